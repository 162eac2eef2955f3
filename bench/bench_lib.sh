# Helpers for the benches (sourced).

# firmware_image SIZE_MIB: writes to stdout half incompressible, half text-like bytes, which is
# what a firmware image with code and tables looks like to a compressor.
firmware_image() {
  local half=$(($1 / 2))
  head -c "${half}M" /dev/urandom
  # yes ends by SIGPIPE when head has enough; that is not a failure.
  { yes "calibration table row: 3.700V 25.0C 0x1f2e3d4c status=ok" || true; } |
    head -c "$(($1 - half))M"
}

# free_port FROM: the first loopback port from FROM on that nothing listens on. Start below 32768:
# a port in the ephemeral range may be held by an outgoing connection and then cannot be bound.
free_port() {
  local p=$1
  while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
  echo "$p"
}
