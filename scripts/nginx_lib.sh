# Sourced by scripts that run a throwaway nginx as an ordinary process in a work directory.
# nginx_prologue DIR WORKERS CONNECTIONS: prints the start of an nginx.conf whose pid file, logs and
# temporary files all stay in DIR (DIR/nginx-tmp must exist), up to inside `http {`. The caller
# prints its own http directives and servers, then the closing "}".
nginx_prologue() {
  local dir=$1 workers=$2 connections=$3
  cat <<CONF
worker_processes $workers;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log;
events { worker_connections $connections; }
http {
  access_log off;
  client_body_temp_path $dir/nginx-tmp;
  proxy_temp_path $dir/nginx-tmp;
  fastcgi_temp_path $dir/nginx-tmp;
  uwsgi_temp_path $dir/nginx-tmp;
  scgi_temp_path $dir/nginx-tmp;
CONF
}
