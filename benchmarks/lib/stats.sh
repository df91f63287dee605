# Statistics over one path's rounds, for the benchmarks that interleave paths round by round
# (pgbench.sh, http.sh). Each reads whitespace-separated numbers on standard input.
sorted() { tr ' ' '\n' | grep -v '^$' | sort -g; }
median() { sorted | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
# (max - min) / median of the rounds, in percent: how far one path's rounds are apart.
spread() { local v m; v=$(cat); m=$(echo "$v" | median); echo "$v" | sorted | awk -v m="$m" '{a[NR]=$1} END {print (m > 0 ? 100 * (a[NR] - a[1]) / m : 0)}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{print (b > 0 ? a/b : 0)}'; }
