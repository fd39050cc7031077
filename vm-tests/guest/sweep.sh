# Section (j), sourced by phase1.sh (uses check/note from guest/run): every syscall group and
# every Landlock right, on this guest's kernel and architecture, through the installed
# hardend-exec. This is what makes a wrong syscall number or a missing Landlock right of an
# architecture visible: the numbers the probe calls come from libseccomp's table (not from
# hardend's), the denials from the kernel.
#
# Runs on the host as well, for development: EXEC, PROBE and HCTL name the binaries.
EXEC=${EXEC:-/usr/libexec/hardend/hardend-exec}
PROBE=${PROBE:-/usr/local/libexec/hardend-probe}
HCTL=${HCTL:-hardenctl}
sw=/var/tmp/sweep
rm -rf "$sw"
mkdir -p "$sw/rt" "$sw/profiles"
chmod 755 "$sw"
machine=$(uname -m)

# --- syscalls: for each of systemd's groups, its own members denied (ECANCELED, an errno no
# call given these arguments returns), each called by the probe -----------------------------
# what the probe and the dynamic loader need to start and report: never denied here (their
# numbers are exercised by every run, and by the table test on the host)
essential=" read write openat close newfstatat fstat lstat stat statx pread64 access faccessat faccessat2 poll ppoll rt_sigaction rt_sigprocmask sigaltstack arch_prctl readlink readlinkat fcntl lseek mremap madvise "
expand() { # FILE: the syscall names its expansion allows on this architecture, sorted
    "$HCTL" --json profile show --expand "$1" | sed -n '/"allowed": \[/,/\]/s/^ *"\([a-z0-9_]*\)",\{0,1\}$/\1/p' | sort -u
}
printf 'name = "sweep-default"\n[seccomp]\nallow = []\n' > "$sw/profiles/sweep-default.toml"
expand "$sw/profiles/sweep-default.toml" > "$sw/default.txt"
groups=$(systemd-analyze syscall-filter 2>/dev/null | grep -E '^@[a-z-]+$' | grep -vxE '@default|@known')
# the control: the same calls under the same filter without the deny. A call must fail with
# the profile's errno when denied and reach the kernel (its own errno) when not, or this run
# proves nothing about it: hardend's own rules (side doors, argument rules on PIDs, namespace
# flags and socket families) answer -1 arguments with the profile's errno too, and those calls
# are listed as not distinguished. The control does not make calls that would really fork the
# probe or wait forever.
ctl="$sw/profiles/sweep-control.toml"
printf 'name = "sweep-control"\n[seccomp]\nallow = ["@known"]\nerrno = "ECANCELED"\n' > "$ctl"
unsafe_ctl=" fork vfork pause msgget sync "
ngroups=0
unresolved=""
indistinct=""
for g in $groups; do
    f="$sw/profiles/sweep-deny-${g#@}.toml"
    printf 'name = "sweep-deny-%s"\n[seccomp]\nallow = ["%s"]\n' "${g#@}" "$g" > "$f"
    if ! "$HCTL" -q profile check "$f" >/dev/null 2>&1; then
        check "j: hardend knows systemd's group $g" "$HCTL" profile check "$f"
        continue
    fi
    members=$(expand "$f" | comm -23 - "$sw/default.txt")
    denied=""
    for s in $members; do
        case "$essential" in *" $s "*) ;; *) denied="$denied $s" ;; esac
    done
    [ -n "$denied" ] || continue
    ndenied=$(wc -w <<<"$denied")
    {
        printf 'name = "sweep-deny-%s"\n[seccomp]\nallow = ["@known"]\nerrno = "ECANCELED"\ndeny = [' "${g#@}"
        printf '"%s", ' $denied
        printf ']\n'
    } > "$f"
    ops=$(printf 'sys=%s ' $denied)
    # shellcheck disable=SC2086
    out=$(timeout 60 "$EXEC" --profile "$f" --runtime-dir "$sw/rt" -- "$PROBE" sys=getppid $ops 2>&1)
    rc=$?
    ctl_ops=""
    for s in $denied; do case "$unsafe_ctl" in *" $s "*) ;; *) ctl_ops="$ctl_ops sys=$s" ;; esac; done
    # shellcheck disable=SC2086
    ctl_out=$(timeout 60 "$EXEC" --profile "$ctl" --runtime-dir "$sw/rt" -- "$PROBE" $ctl_ops 2>&1)
    unset kernel
    declare -A kernel=()
    while read -r line; do
        sc=${line%% -> *}
        kernel[${sc#sys=}]=${line#* -> }
    done < <(grep '^sys=' <<<"$ctl_out")
    # every member fails with the profile's errno, all of them reported, getppid (allowed)
    # still answers. Calls newer than libseccomp's table cannot be numbered independently:
    # listed, not called. clone3 is ENOSYS under every hardend filter (so that glibc falls
    # back to clone(2), whose namespace flags the filter can see).
    bad=""
    [ "$rc" = 0 ] || bad="$bad (hardend-exec or the probe exited with $rc)"
    lines=$(grep -c '^sys=' <<<"$out")
    [ "$lines" = $((ndenied + 1)) ] || bad="$bad ($lines answers for $((ndenied + 1)) calls)"
    proven=0
    same=""
    while read -r line; do
        sc=${line%% -> *}
        sc=${sc#sys=}
        answer=${line#* -> }
        case "$sc:$answer" in
            getppid:ok*) continue ;;
            getppid:*) bad="$bad getppid: $answer;"; continue ;;
            *:unresolved) unresolved="$unresolved $sc"; continue ;;
            clone3:"errno 38") continue ;;
            *:"errno 125") ;;
            *) bad="$bad $sc: $answer;"; continue ;;
        esac
        k=${kernel[$sc]:-}
        if [ -n "$k" ] && [ "$k" != "errno 125" ]; then proven=$((proven + 1)); else same="$same $sc"; fi
    done < <(grep '^sys=' <<<"$out")
    indistinct="$indistinct$same"
    if [ "$proven" = 0 ] && [ -z "$bad" ]; then
        note "$g: none of its $ndenied calls is distinguished by this run (hardend's own rules answer them too):$same"
        continue
    fi
    ngroups=$((ngroups + 1))
    check "j: $machine: $g denied: each of $ndenied calls (numbered by libseccomp) fails with the profile's errno; $proven of them reach the kernel without the deny" \
        bash -c '[ -z "$1" ] || { printf "%s\n" "$1"; exit 1; }' _ "$bad"
done
note "not in this libseccomp's table, so not called: $(tr ' ' '\n' <<<"$unresolved" | sort -u | tr '\n' ' ')" \
    "denied, but not distinguished here (hardend's own rules answer -1 arguments with the profile's errno too, or the control does not make the call):$(tr ' ' '\n' <<<"$indistinct" | sort -u | tr '\n' ' ')"
# systemd-analyze answered and the groups were found: a sweep that checks nothing fails
check "j: $machine: $ngroups of systemd's syscall groups distinguished (at least 20)" test "$ngroups" -ge 20

# --- Landlock: every filesystem right of this kernel's ABI, allowed where granted and
# denied one directory away; as nobody, owner of every file, so only Landlock can refuse ---
abi=$("$PROBE" landlock | sed -n 's/^landlock -> ok \([0-9]*\)$/\1/p')
abi=${abi:-0}
L="$sw/ll"
mkdir -p "$L/r/empty" "$L/w1/empty" "$L/w2" "$L/x" "$L/n"
for f in r/f r/g r/t n/f w1/f w1/g w1/t; do echo data > "$L/$f"; done
cp /bin/true "$L/x/prog"
cp /bin/true "$L/r/prog"
chown -R 65534:65534 "$sw/rt" "$L"
ll="$sw/profiles/sweep-landlock.toml"
cat > "$ll" <<EOF
name = "sweep-landlock"
[landlock]
read_exec = ["$PROBE", "/usr/lib", "/usr/lib64", "$L/x"]
read = ["/etc/ld.so.cache", "$L/r"]
write = ["$L/w1", "$L/w2"]
EOF
[ "$abi" -lt 6 ] || printf 'scope = ["signal"]\n' >> "$ll"
setpriv --reuid=65534 --regid=65534 --clear-groups sleep 600 &
outside=$!
# OP EXPECTED (ok | errno N): the first half of each pair is granted, the second is not
pairs="
read=$L/r/f ok
read=$L/n/f 13
readdir=$L/r ok
readdir=$L/n 13
spawn=$L/x/prog ok0
spawn=$L/r/prog 13
write=$L/w1/f ok
write=$L/r/f 13
write=$L/w1/new ok
write=$L/r/new 13
unlink=$L/w1/g ok
unlink=$L/r/g 13
mkdir=$L/w1/dir ok
mkdir=$L/r/dir 13
rmdir=$L/w1/empty ok
rmdir=$L/r/empty 13
symlink=/nowhere,$L/w1/sym ok
symlink=/nowhere,$L/r/sym 13
mkfifo=$L/w1/fifo ok
mkfifo=$L/r/fifo 13
unix-bind=$L/w1/sock ok
unix-bind=$L/r/sock 13
mknod-char=$L/w1/chr 13
mknod-block=$L/w1/blk 13
"
# refer (ABI 2): a file moves from one write tree to another; out of a read tree it cannot
[ "$abi" -lt 2 ] || pairs="$pairs
rename=$L/w1/t,$L/w2/t ok
rename=$L/r/t,$L/w1/t2 13
"
# truncate (ABI 3)
if [ "$abi" -ge 3 ]; then
    pairs="$pairs
truncate=$L/w1/f ok
truncate=$L/r/f 13
"
fi
# the signal scope (ABI 6): a process of the same user outside the sandbox cannot be signalled
[ "$abi" -lt 6 ] || pairs="$pairs
kill=$outside,0 1
"
ops=$(awk 'NF == 2 { print $1 }' <<<"$pairs")
# shellcheck disable=SC2086
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$EXEC" --profile "$ll" --runtime-dir "$sw/rt" -- "$PROBE" $ops 2>&1)
kill "$outside" 2>/dev/null
note "Landlock ABI $abi on $machine, as nobody:" "$out"
bad=""
while read -r op want; do
    [ -n "$op" ] || continue
    case "$want" in ok0) re="^$op -> ok 0\$" ;; ok) re="^$op -> ok" ;; *) re="^$op -> errno $want\$" ;; esac
    grep -q -- "$re" <<<"$out" || bad="$bad $op(want $want)"
done <<<"$pairs"
rights="execute read_file read_dir write_file make_reg remove_file make_dir remove_dir make_sym make_fifo make_sock make_char make_block"
[ "$abi" -lt 2 ] || rights="$rights refer"
[ "$abi" -lt 3 ] || rights="$rights truncate"
[ "$abi" -lt 6 ] || rights="$rights scope.signal"
check "j: $machine, Landlock ABI $abi: each right granted where the profile says and denied (EACCES) next to it: $rights" \
    bash -c '[ -z "$1" ] || { echo "wrong:$1"; exit 1; }' _ "$bad"
if [ "$abi" -lt 3 ]; then
    # below ABI 3 truncation is not a Landlock right: it works, and hardend says so
    out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$EXEC" --profile "$ll" --runtime-dir "$sw/rt" -- "$PROBE" "truncate=$L/r/f" 2>&1)
    check "j: ABI $abi: truncate outside the write trees works (no Landlock right below ABI 3), and the run's enforcement record names fs.truncate missing" \
        bash -c 'grep -q "^truncate=$1 -> ok" <<<"$2" && grep -l "\"profile\":\"sweep-landlock\"" "$3"/*.json | xargs grep -l "fs.truncate" | grep -q .' _ "$L/r/f" "$out" "$sw/rt"
fi
