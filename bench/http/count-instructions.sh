#!/bin/bash
# usage: count.sh <framework> <mode> <requests>  -> prints total instructions (Ir) of the server
FW=$1; MODE=$2; N=$3
OUT=$(mktemp -d)
taskset -c 0 valgrind --tool=callgrind --callgrind-out-file=$OUT/cg.out node server.js $FW $MODE > $OUT/srv.log 2>$OUT/vg.log &
for i in $(seq 1 600); do P=$(grep -o 'ready [0-9]*' $OUT/srv.log | grep -o '[0-9]*'); [ -n "$P" ] && break; sleep 0.2; done
taskset -c 1 npx autocannon -c 1 -a $N http://127.0.0.1:$P/ > /dev/null 2>&1
pkill -INT -f "node server.js $FW $MODE"
wait
grep -o 'summary: [0-9]*' $OUT/cg.out | grep -o '[0-9]*'
rm -rf $OUT
