set datafile separator ','
set terminal svg size 900,420 dynamic font 'sans,11'
set key outside right top
set grid
set xlabel 'seconds since the rollout started'
set arrow 1 from 8.0, graph 0 to 8.0, graph 1 nohead dt 2 lc rgb '#888888'
set arrow 2 from 20.0, graph 0 to 20.0, graph 1 nohead dt 2 lc rgb '#888888'
set arrow 3 from 30.0, graph 0 to 30.0, graph 1 nohead dt 2 lc rgb '#888888'
set arrow 4 from 38.0, graph 0 to 38.0, graph 1 nohead dt 2 lc rgb '#888888'
set arrow 5 from 45.0, graph 0 to 45.0, graph 1 nohead dt 2 lc rgb '#888888'
set arrow 6 from 55.0, graph 0 to 55.0, graph 1 nohead dt 2 lc rgb '#888888'
set arrow 7 from 115.5, graph 0 to 115.5, graph 1 nohead dt 2 lc rgb '#888888'
set output 'docs/fleet-sim/chaos-progress.svg'
set title 'chaos: rollout to 10000 devices'
set ylabel 'devices'
set y2label 'wave'
set y2tics 1
set y2range [0:4]
plot 'docs/fleet-sim/chaos.csv' every ::1 using 1:6 with lines lw 2 title 'offered', '' every ::1 using 1:7 with lines lw 2 title 'succeeded', '' every ::1 using 1:8 with lines lw 2 title 'failed', '' every ::1 using 1:9 with lines title 'busy', '' every ::1 using 1:10 axes x1y2 with steps dt 2 lc rgb '#666666' title 'wave'
unset y2tics
unset y2label
set autoscale y2
set output 'docs/fleet-sim/chaos-latency.svg'
set title 'chaos: check-ins and reports per second, check-in latency'
set ylabel 'ms'
set logscale y
set y2label 'per second'
set y2tics autofreq
plot 'docs/fleet-sim/chaos.csv' every ::1 using 1:($4>0?$4:1/0) with lines lw 2 title 'p50', '' every ::1 using 1:($5>0?$5:1/0) with lines lw 2 title 'p99', '' every ::1 using 1:2 axes x1y2 with lines dt 3 title 'check-ins/s', '' every ::1 using 1:15 axes x1y2 with lines dt 3 title 'reports/s'
unset logscale y
set output 'docs/fleet-sim/chaos-servers.svg'
set title 'chaos: CPU (% of one core) and memory'
set ylabel 'CPU %'
set y2label 'RSS MiB'
set y2tics autofreq
plot 'docs/fleet-sim/chaos.csv' every ::1 using 1:16 with lines lw 2 lc 1 title 'aloftd 0 CPU', '' every ::1 using 1:17 axes x1y2 with lines dt 3 lc 1 title 'aloftd 0 RSS', 'docs/fleet-sim/chaos.csv' every ::1 using 1:18 with lines lw 2 lc 2 title 'aloftd 1 CPU', '' every ::1 using 1:19 axes x1y2 with lines dt 3 lc 2 title 'aloftd 1 RSS', '' every ::1 using 1:13 with lines lw 2 lc 6 title 'PostgreSQL CPU', '' every ::1 using 1:14 axes x1y2 with lines dt 3 lc 6 title 'PostgreSQL private RSS', '' every ::1 using 1:11 with lines lw 2 lc 7 title 'simulator CPU', '' every ::1 using 1:12 axes x1y2 with lines dt 3 lc 7 title 'simulator RSS'
