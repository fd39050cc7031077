# Phase 1 (sourced by guest/run): install the package and run scenarios a, b, c, e, f and
# the first half of d. Uses check/note/wait_for from guest/run.

# --- install -----------------------------------------------------------------------------
# the guest boots a kernel and initramfs from the host: rebuilding its initramfs (the
# package's hook triggers that) would only cost minutes under TCG
sed -i 's/^update_initramfs=.*/update_initramfs=no/' /etc/initramfs-tools/update-initramfs.conf
check "the hardend .deb installs (dpkg -i)" dpkg -i "$H/hardend.deb"
# verification every 2 s; the verity check watches the test device mounted at /mnt/vtest
cat > /etc/hardend/hardend.toml <<'EOF'
[daemon]
verify_interval = 2
[verity]
mountpoint = "/mnt/vtest"
EOF
systemctl restart hardend

# --- (a) the service -----------------------------------------------------------------------
check "a: hardend.service is active" systemctl is-active hardend
# no integrity baseline yet: degraded, and the status says what to do (exit 3)
st=$(hardenctl status 2>&1); rc=$?
note "$st"
check "a: hardenctl status answers degraded (exit $rc) and names the missing baseline" \
    bash -c '[ "$1" = 3 ] && grep -Eq "^integrity +no-baseline .*hardenctl integrity init" <<<"$2"' _ "$rc" "$st"
sec=$(systemd-analyze security hardend.service 2>&1)
note "systemd-analyze security hardend.service:" "$(printf '%s\n' "$sec" | grep -E '✗|Overall')"
exposure=$(printf '%s\n' "$sec" | sed -n 's/.*Overall exposure level for hardend.service: \([0-9.]*\).*/\1/p')
check "a: exposure $exposure is at most 2.5" awk -v e="$exposure" 'BEGIN { exit !(e != "" && e <= 2.5) }'

# the smoke set (trixie and arm64 guests in CI, vm-tests/run --smoke): install, the service,
# confinement with the escape probes, the TPM identity, verity, and the sweep (j) of every
# syscall group and Landlock right; it leaves out (b), (f), (g), (h) and (i)
remedy="hardenctl confine mosquitto.service mosquitto"
if [ "$smoke" = 0 ]; then
# --- (b) authorization on the real system bus ------------------------------------------------
nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
denied() { # the call must fail with AccessDenied
    local out
    out=$(nobody busctl call org.hardend1 /org/hardend1 "$@" 2>&1) && { echo "allowed: $out"; return 1; }
    printf '%s\n' "$out"
    printf '%s\n' "$out" | grep -q "Access denied"
}
check "b: non-root busctl Manager.Reload: Access denied" denied org.hardend1.Manager Reload
check "b: non-root busctl Manager.Confine: Access denied" denied org.hardend1.Manager Confine ssbb mosquitto.service mosquitto false false
check "b: non-root busctl Identity.Create: Access denied" denied org.hardend1.Identity Create
check "b: non-root busctl Integrity.Init: Access denied" denied org.hardend1.Integrity Init
check "b: non-root may read: hardenctl status as nobody" \
    bash -c 'out=$(setpriv --reuid=65534 --regid=65534 --clear-groups hardenctl status); [ $? -le 3 ] && grep -q "^services " <<<"$out"'
check "b: non-root busctl Integrity.ListViolations: Access denied (it names files)" denied org.hardend1.Integrity ListViolations

# --- (i) audit, before confinement: systemd's number recomputed, the remedy offered -------------
# every service systemd-analyze lists: the same exposure from hardenctl audit (systemd's
# formula and the table of this systemd, from the units' D-Bus properties)
sa_all=$(systemd-analyze security --no-pager 2>&1)
au_all=$(hardenctl audit 2>&1)
note "systemd-analyze security:" "$sa_all" "hardenctl audit:" "$au_all"
sa_rows=$(awk '$1 ~ /\.service$/ { print $1, $2 }' <<<"$sa_all" | sort)
au_rows=$(awk '$1 ~ /\.service$/ && $2 ~ /^[0-9]+\.[0-9]$/ { print $1, $2 }' <<<"$au_all" | sort)
nsame=$(comm -12 <(echo "$sa_rows") <(echo "$au_rows") | grep -c .)
check "i: hardenctl audit's systemd exposure equals systemd-analyze security for all $nsame units" \
    bash -c '[ "$1" -ge 5 ] && [ "$2" = "$3" ] || { diff <(echo "$2") <(echo "$3"); exit 1; }' _ "$nsame" "$sa_rows" "$au_rows"
# one unit asked for on its own: the same number as systemd-analyze security UNIT
one_sa=$(systemd-analyze security --no-pager dbus.service 2>&1 | sed -n 's/.*Overall exposure level for dbus.service: \([0-9.]*\).*/\1/p')
one_au=$(hardenctl audit dbus.service | awk '$1 == "dbus.service" { print $2 }')
check "i: hardenctl audit dbus.service = systemd-analyze security dbus.service ($one_au, $one_sa)" test -n "$one_sa" -a "$one_sa" = "$one_au"
mq_before=$(hardenctl audit mosquitto.service)
note "$mq_before"
mq_sd=$(awk '$1 == "mosquitto.service" && $2 ~ /^[0-9]+\.[0-9]$/ { print $2 }' <<<"$mq_before")
mq_hd=$(awk '$1 == "mosquitto.service" && $2 ~ /^[0-9]+\.[0-9]$/ { print $4 }' <<<"$mq_before")
check "i: unconfined mosquitto scores systemd's number ($mq_sd = $mq_hd)" test -n "$mq_sd" -a "$mq_sd" = "$mq_hd"
remedy=$(sed -n 's/.*→ `\(hardenctl confine [^`]*\)`.*/\1/p' <<<"$mq_before")
check "i: the remedy offered for unconfined mosquitto is '$remedy'" test "$remedy" = "hardenctl confine mosquitto.service mosquitto"

fi

# --- (c) a real Debian service, confined -----------------------------------------------------
check "c: mosquitto (Debian's package) runs" systemctl is-active mosquitto
# the remedy hardenctl audit printed, run as printed
check "c: $remedy (the audit's remedy)" $remedy
# enforced, or partial on a kernel below the profile's Landlock ABI (6.1: ABI 2), which
# hardend must then name
enforced() { hardenctl services | grep -E "^$1 +[^ ]+ +(enforced|partial) "; }
abi=$(hardenctl --json status | sed -n 's/.*"kernel_landlock_abi": *\([0-9]*\).*/\1/p')
note "kernel Landlock ABI: $abi"
check "c: hardenctl services shows mosquitto enforced" wait_for 30 enforced mosquitto.service
note "$(hardenctl services 2>&1)"
mpid=$(systemctl show -p MainPID --value mosquitto)
check "c: the kernel shows NoNewPrivs and a seccomp filter on mosquitto" \
    bash -c "grep -q '^NoNewPrivs:[[:space:]]*1' /proc/$mpid/status && grep -q '^Seccomp:[[:space:]]*2' /proc/$mpid/status"
mqtt_connack() { # MQTT 3.1.1 CONNECT (clean session, empty client id) -> CONNACK accepted
    exec 3<>/dev/tcp/127.0.0.1/1883 || return 1
    printf '\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00' >&3
    local r; r=$(timeout 5 head -c 4 <&3 | od -An -tx1 | tr -d ' \n')
    exec 3<&-
    echo "reply: $r"
    [ "$r" = "20020000" ]
}
check "c: confined mosquitto still serves MQTT (CONNECT -> CONNACK)" mqtt_connack

# a sandboxed web server whose CGI children (same Landlock domain and seccomp filter)
# report what they may do from inside the sandbox
mkdir -p /var/www/cgi-bin
echo "served from inside the sandbox" > /var/www/index.html
cat > /var/www/cgi-bin/probe <<'EOF'
#!/bin/busybox sh
echo "Content-Type: text/plain"
echo
b=/bin/busybox
if $b cat /var/www/index.html >/dev/null 2>&1; then echo "docroot read: allowed"; else echo "docroot read: denied"; fi
if $b cat /etc/shadow >/dev/null 2>&1; then echo "shadow read: allowed"; else echo "shadow read: denied"; fi
if $b touch /var/www/pwned 2>/dev/null; then echo "docroot write: allowed"; else echo "docroot write: denied"; fi
if $b touch /etc/pwned 2>/dev/null; then echo "etc write: allowed"; else echo "etc write: denied"; fi
out=$($b timeout 1 $b nc -l -p 9999 2>&1)
case "$out" in *ermission*|*denied*|*bind*) echo "bind 9999: denied ($out)" ;; *) echo "bind 9999: allowed ($out)" ;; esac
EOF
chmod 755 /var/www/cgi-bin/probe
cat > /etc/hardend/profiles/vmtest-cgi.toml <<'EOF'
name = "vmtest-cgi"
description = "busybox httpd with CGI, for the VM tests: reads its document root, runs its CGI scripts, binds 8081"
include = ["base"]
[landlock]
read = ["/var/www"]
read_exec = ["/bin/busybox", "/usr/bin/busybox", "/var/www/cgi-bin"]
write = []
bind_tcp = [8081]
connect_tcp = []
[seccomp]
allow = ["@system-service"]
deny = ["@privileged", "@io-uring"]
EOF
cat > /etc/systemd/system/vmtest-httpd.service <<'EOF'
[Unit]
Description=busybox httpd with a CGI probe (hardend VM tests)
[Service]
ExecStart=/bin/busybox httpd -f -p 127.0.0.1:8081 -h /var/www
EOF
systemctl daemon-reload
systemctl start vmtest-httpd
check "c: hardenctl confine vmtest-httpd.service vmtest-cgi" hardenctl confine vmtest-httpd.service vmtest-cgi
check "c: vmtest-httpd enforced" wait_for 30 enforced vmtest-httpd.service
probe=$(busybox wget -q -O - http://127.0.0.1:8081/cgi-bin/probe 2>&1)
note "from inside the sandbox:" "$probe"
check "c: inside the sandbox the document root is readable" grep -q "docroot read: allowed" <<<"$probe"
check "c: inside the sandbox /etc/shadow cannot be read (even as root)" grep -q "shadow read: denied" <<<"$probe"
check "c: inside the sandbox nothing can be written" bash -c 'grep -q "docroot write: denied" <<<"$1" && grep -q "etc write: denied" <<<"$1" && [ ! -e /etc/pwned ]' _ "$probe"
# the kernels differ here, and each guest asserts its own side (Debian 12: ABI 2, 13: ABI 6)
if [ "${abi:-0}" -ge 4 ]; then
    check "c: ABI $abi: inside the sandbox binding another port is denied" grep -q "bind 9999: denied" <<<"$probe"
    check "c: ABI $abi: hardend does not report net.bind_tcp missing" \
        bash -c '! hardenctl services | grep -q "vmtest-httpd.service: .*missing.*net.bind_tcp"'
else
    # no network rules below ABI 4: hardend must say so rather than claim them
    check "c: ABI $abi: inside the sandbox binding another port still works" grep -q "bind 9999: allowed" <<<"$probe"
    check "c: ABI $abi: ... and hardend reports net.bind_tcp missing" \
        bash -c 'hardenctl services | grep -q "vmtest-httpd.service: .*missing.*net.bind_tcp (ABI 4)"'
fi
# and the same probe unconfined, to show the difference is the sandbox
check "c: unconfined, the same probe reads /etc/shadow" bash -c 'SERVER_PROTOCOL=x /var/www/cgi-bin/probe | grep -q "shadow read: allowed"'
rm -f /var/www/pwned /etc/pwned

# a root service turned hostile (#13): from inside its sandbox it tries every pathname socket
# the kernel lists in /proc/net/unix, asks systemd (through the bus and through systemd's
# private socket) to start a unit that would leave a marker, asks hardend to reload, and
# chmods programs in /usr/bin. The same script runs unconfined first, as the control.
mkdir -p /usr/local/libexec
install -m 755 "$H/probe" /usr/local/libexec/hardend-probe
cat > /etc/systemd/system/vmtest-pwned.service <<'EOF'
[Service]
Type=oneshot
ExecStart=/bin/touch /var/tmp/pwned
EOF
socks=$(awk 'NR > 1 && $8 ~ /^\// { print $8 }' /proc/net/unix | sort -u)
note "pathname sockets in /proc/net/unix:" $socks
{
    echo '#!/bin/sh'
    echo 'P=/usr/local/libexec/hardend-probe'
    # results go to a file in the profile's write tree: journald attributes a line to the unit
    # by the writer's PID, and a probe that has exited before journald reads its /dev/log
    # datagram leaves that PID cached without the unit's fields
    echo 'exec >/var/lib/vmtest-attack/out 2>&1'
    for s in $socks; do echo "\$P unix-connect=$s unix-sendto=$s"; done
    cat <<'EOF'
$P chmod=/usr/bin/busctl,493 chmod=/usr/bin/sleep,2541 chown=/usr/bin/sleep,0,0
$P unix-sendto=/dev/log lstat=/run/systemd/system
/usr/bin/busctl call org.freedesktop.systemd1 /org/freedesktop/systemd1 org.freedesktop.systemd1.Manager StartUnit ss vmtest-pwned.service replace >/dev/null 2>&1; echo "bus StartUnit -> rc $?"
/usr/bin/systemctl start vmtest-pwned.service >/dev/null 2>&1; echo "systemctl start -> rc $?"
/usr/bin/busctl call org.hardend1 /org/hardend1 org.hardend1.Manager Reload >/dev/null 2>&1; echo "hardend Reload -> rc $?"
echo "attack done"
exec /usr/bin/sleep infinity
EOF
} > /usr/local/libexec/vmtest-attack
chmod 755 /usr/local/libexec/vmtest-attack
cat > /etc/hardend/profiles/vmtest-attack.toml <<'EOF'
name = "vmtest-attack"
description = "a root service that tries to leave its sandbox (VM tests)"
include = ["base"]
[landlock]
read = ["/usr/local/libexec/vmtest-attack"]
write = ["/var/lib/vmtest-attack"]
read_exec = ["/usr/bin/dash", "/usr/bin/busctl", "/usr/bin/systemctl", "/usr/bin/sleep", "/usr/local/libexec/hardend-probe"]
EOF
cat > /etc/systemd/system/vmtest-attack.service <<'EOF'
[Unit]
Description=a root service that tries to leave its sandbox (hardend VM tests)
[Service]
ExecStart=/bin/sh /usr/local/libexec/vmtest-attack
EOF
systemctl daemon-reload
mkdir -p /var/lib/vmtest-attack
attack_log() { cat /var/lib/vmtest-attack/out 2>/dev/null; }
attack_done() { attack_log | grep -q "attack done"; }
rm -f /var/tmp/pwned /var/lib/vmtest-attack/out
systemctl start vmtest-attack
check "c: control: the attack script ran unconfined" wait_for 60 attack_done
control=$(attack_log)
check "c: control: unconfined, root reaches the system bus and systemd starts the unit" \
    bash -c 'grep -q "unix-connect=/run/dbus/system_bus_socket -> ok" <<<"$1" && grep -q "bus StartUnit -> rc 0" <<<"$1" && [ -e /var/tmp/pwned ]' _ "$control"
check "c: control: unconfined, root may chmod /usr/bin/busctl" grep -q "chmod=/usr/bin/busctl,493 -> ok" <<<"$control"
systemctl stop vmtest-attack
rm -f /var/tmp/pwned /var/lib/vmtest-attack/out
check "c: hardenctl confine vmtest-attack vmtest-attack (a bare unit name)" hardenctl confine vmtest-attack vmtest-attack
check "c: vmtest-attack enforced" wait_for 30 enforced vmtest-attack.service
check "c: the confined attack script ran" wait_for 60 attack_done
attack=$(attack_log)
note "from inside the confined root service:" "$attack"
granted_sock() { case "$1" in /run/systemd/journal/*|/dev/log|/run/systemd/notify) return 0 ;; esac; return 1; }
unreached() { # every socket outside the grants: connect and sendto fail
    local bad=0 s
    for s in $socks; do
        granted_sock "$s" && continue
        grep -q "^unix-connect=$s -> errno" <<<"$attack" || { echo "reached: $s"; bad=1; }
        grep -q "^unix-sendto=$s -> errno" <<<"$attack" || { echo "sent to: $s"; bad=1; }
    done
    return $bad
}
check "c: confined root reaches no pathname socket in /proc/net/unix outside its grants" unreached
check "c: confined root still reaches the journal (granted by base)" \
    grep -q "^unix-connect=/run/systemd/journal/stdout -> ok" <<<"$attack"
check "c: confined root still logs through /dev/log and sees /run/systemd/system (sd_booted)" \
    bash -c 'grep -q "^unix-sendto=/dev/log -> ok" <<<"$1" && grep -q "^lstat=/run/systemd/system -> ok" <<<"$1"' _ "$attack"
check "c: confined root cannot make systemd start a unit (bus and private socket)" \
    bash -c 'grep -q "bus StartUnit -> rc [1-9]" <<<"$1" && grep -q "systemctl start -> rc [1-9]" <<<"$1" && [ ! -e /var/tmp/pwned ]' _ "$attack"
check "c: confined root cannot call org.hardend1" grep -q "hardend Reload -> rc [1-9]" <<<"$attack"
check "c: confined root cannot chmod or chown /usr/bin/* (EROFS)" \
    bash -c 'grep -q "^chmod=/usr/bin/busctl,493 -> errno 30" <<<"$1" && grep -q "^chmod=/usr/bin/sleep,2541 -> errno 30" <<<"$1" && grep -q "^chown=/usr/bin/sleep,0,0 -> errno 30" <<<"$1" && ! [ -u /usr/bin/sleep ]' _ "$attack"
check "c: mosquitto still serves MQTT next to it" mqtt_connack
check "c: busybox httpd still serves next to it" bash -c 'busybox wget -q -O - http://127.0.0.1:8081/ | grep -q "served from inside the sandbox"'
hardenctl release vmtest-attack.service >/dev/null 2>&1
systemctl stop vmtest-attack

# a Type=simple unit whose new profile breaks it: its start job is done at fork, the
# wrapper fails a moment later and Restart=on-failure hides that; Confine must still see
# it and put the unit back as it was
cat > /etc/systemd/system/vmtest-simple.service <<'EOF'
[Service]
Type=simple
ExecStart=/usr/bin/sleep infinity
Restart=on-failure
RestartSec=200ms
EOF
cat > /etc/hardend/profiles/vmtest-broken.toml <<'EOF'
name = "vmtest-broken"
description = "does not grant the service its program (VM tests)"
include = ["base"]
[landlock]
read_exec = ["/usr/bin/true"]
EOF
systemctl daemon-reload
systemctl start vmtest-simple
rb=$(hardenctl confine vmtest-simple vmtest-broken 2>&1); rc=$?
note "$rb"
check "c: confining a Type=simple unit by a profile that breaks it fails (exit 1) and says it was restored" \
    bash -c '[ "$1" = 1 ] && grep -q "failed under profile vmtest-broken" <<<"$2" && grep -q "previous configuration was restored" <<<"$2"' _ "$rc" "$rb"
check "c: ... no drop-in is left and the unit runs again as before" \
    bash -c '[ ! -e /etc/systemd/system/vmtest-simple.service.d/50-hardend.conf ] && systemctl is-active vmtest-simple && ! grep -q "NoNewPrivs:.*1" /proc/$(systemctl show -p MainPID --value vmtest-simple)/status'
systemctl stop vmtest-simple

# --- (d) first half: a device identity to find again after the reboot ------------------------
check "d: /dev/tpmrm0 exists" test -c /dev/tpmrm0
check "d: hardenctl identity create" hardenctl identity create
fp=$(hardenctl --json identity show | sed -n 's/.*"fingerprint": *"\([0-9a-f]*\)".*/\1/p')
echo "$fp" > "$H/results/fingerprint"
check "d: the identity has a fingerprint" test -n "$fp"
note "identity: $(hardenctl identity show 2>&1 | head -n 4)"
# enrolment on the guest's /dev/tpmrm0: swtpm's EK certificate checked against swtpm's CA
hardenctl --json identity enroll --ek-ca "$H/ek-ca" > "$H/results/enroll.json" 2>&1
check "d: identity enroll: the EK certificate chains to swtpm's CA and certifies this TPM's EK" \
    grep -q '"state": *"verified"' "$H/results/enroll.json"
check "d: identity enroll: the attestation key has a name" grep -q '"ak_name": *"000b[0-9a-f]\{64\}"' "$H/results/enroll.json"

# --- (e) dm-verity on a real kernel ----------------------------------------------------------
img=/var/tmp/data.img
hash=/var/tmp/hash.img
rm -f "$img" "$hash"
dd if=/dev/zero of="$img" bs=1M count=16 status=none
# 4 KiB blocks: the verity device has 4 KiB logical blocks, a 1 KiB ext4 would not mount
mkfs.ext4 -q -F -b 4096 "$img"
mkdir -p /mnt/vtest
mount -o loop "$img" /mnt/vtest
printf 'hello-verity-block %.0s' $(seq 300) > /mnt/vtest/file
umount /mnt/vtest
fmt=$(hardenctl --json verity format "$img" "$hash" 2>&1)
root=$(printf '%s\n' "$fmt" | sed -n 's/.*"root_hash": *"\([0-9a-f]*\)".*/\1/p' | head -n 1)
check "e: hardenctl verity format" test -n "$root"
dloop=$(losetup -f --show "$img")
hloop=$(losetup -f --show -r "$hash")
check "e: hardenctl verity open" hardenctl verity open vtest "$dloop" "$hloop" "$root"
check "e: status V" bash -c 'hardenctl verity status vtest | grep -qw V'
check "e: the verified device mounts and reads" bash -c 'mount -o ro /dev/mapper/vtest /mnt/vtest && grep -q hello-verity /mnt/vtest/file'
cat > /etc/hardend/hardend.toml <<EOF
[daemon]
verify_interval = 2
[verity]
mountpoint = "/mnt/vtest"
root_hash = "$root"
EOF
systemctl reload hardend
check "e: the daemon sees /mnt/vtest verified with the expected root hash" wait_for 30 hardenctl verity status
note "$(hardenctl verity status 2>&1)"
stdbuf -oL busctl --system monitor --match "type='signal',interface='org.hardend1.Verity'" > /var/tmp/verity-signals.txt 2>&1 &
mon=$!
sleep 1
off=$(grep -abo hello-verity-block "$img" | head -n 1 | cut -d: -f1)
printf 'X' | dd of="$img" bs=1 seek="$off" conv=notrunc status=none
sync
echo 3 > /proc/sys/vm/drop_caches
check "e: reading the corrupted block fails with EIO" bash -c 'out=$(cat /mnt/vtest/file 2>&1 >/dev/null); echo "$out"; grep -q "Input/output error" <<<"$out"'
check "e: status C" bash -c 'hardenctl verity status vtest | grep -qw C'
corrupted() { hardenctl verity status | grep -q corrupted; }
check "e: the daemon reports corrupted" wait_for 30 corrupted
check "e: a VerityCorruption signal was sent" wait_for 30 grep -q VerityCorruption /var/tmp/verity-signals.txt
uevent_logged() { journalctl -b -u hardend --no-pager | grep -q "kernel: dm-verity corruption on"; }
check "e: the kernel's corruption uevent reached the daemon (block named in the journal)" wait_for 30 uevent_logged
note "$(journalctl -b -u hardend --no-pager | grep -E 'dm-verity corruption' | head -n 3)"
kill "$mon" 2>/dev/null
umount /mnt/vtest 2>/dev/null
check "e: hardenctl verity close" hardenctl verity close vtest
losetup -d "$dloop" "$hloop" 2>/dev/null
cat > /etc/hardend/hardend.toml <<'EOF'
[daemon]
verify_interval = 2
EOF
systemctl reload hardend

# --- (j) every syscall group and every Landlock right on this kernel and architecture --------
# shellcheck source=vm-tests/guest/sweep.sh
. "$H/guest/sweep.sh"

if [ "$smoke" = 0 ]; then
# --- (f) integrity monitoring ---------------------------------------------------------------
mkpkg() { # mkpkg VERSION: a tiny package shipping /usr/bin/vmtest-hello
    local d=/var/tmp/pkg-$1
    rm -rf "$d"; mkdir -p "$d/DEBIAN" "$d/usr/bin"
    printf 'Package: vmtest-hello\nVersion: %s\nArchitecture: all\nMaintainer: t <t@example.org>\nDescription: hardend VM test package\n' "$1" > "$d/DEBIAN/control"
    printf '#!/bin/sh\necho "hello %s"\n' "$1" > "$d/usr/bin/vmtest-hello"
    chmod 755 "$d/usr/bin/vmtest-hello"
    (cd "$d" && find usr -type f -exec md5sum {} + > DEBIAN/md5sums)
    dpkg-deb --build "$d" "/var/tmp/vmtest-hello_$1.deb"
}
check "f: a test package, version 1 and 2 (dpkg-deb --build)" bash -c "$(declare -f mkpkg); mkpkg 1 && mkpkg 2"
check "f: version 1 installs" dpkg -i /var/tmp/vmtest-hello_1.deb
t0=$(date +%s)
check "f: hardenctl integrity init" hardenctl integrity init
note "baseline in $(( $(date +%s) - t0 )) s (TCG): $(hardenctl integrity status 2>&1 | head -n 5)"
check "f: integrity status ok" hardenctl integrity status
check "f: hardenctl status is good with a baseline" hardenctl status
note "$(hardenctl status 2>&1)"
# hardenctl doctor: good on the set-up guest; each live check broken on purpose is a
# problem (exit 3) that names its remedy
check "f: hardenctl doctor is good on the set-up guest" hardenctl doctor
note "$(hardenctl doctor 2>&1)"
doctor_says() { # CHECK REMEDY-START
    local out rc=0
    out=$(hardenctl doctor 2>&1) || rc=$?
    printf '%s\n' "$out"
    [ "$rc" = 3 ] && grep -Eq "^$1 +problem " <<<"$out" && grep -q "^$1: $2" <<<"$out"
}
chmod 0777 /run/hardend/enforced
check "f: doctor: a records directory others may list is a problem" doctor_says records "chown root:root"
chmod 1733 /run/hardend/enforced
pol=/usr/share/dbus-1/system.d/org.hardend1.conf
cp -a "$pol" /var/tmp/policy.bak
sed -i 's/<deny /<allow /' "$pol"
check "f: doctor: a changed D-Bus policy is a problem" doctor_says dbus-policy "apt-get install --reinstall"
cp -a /var/tmp/policy.bak "$pol"
# line-buffered: busctl writes block-buffered to a file
stdbuf -oL busctl --system monitor --match "type='signal',interface='org.hardend1.Integrity'" > /var/tmp/integrity-signals.txt 2>&1 &
mon=$!
sleep 1
echo "# changed by the VM test" >> /etc/issue
check "f: changing a watched file raises IntegrityViolation" wait_for 30 grep -q '/etc/issue' /var/tmp/integrity-signals.txt
check "f: ... and it is listed" bash -c 'hardenctl integrity status | grep -q "/etc/issue"'
check "f: installing a new version from a local .deb (dpkg -i)" dpkg -i /var/tmp/vmtest-hello_2.deb
not_listed() { grep -q "hello 2" /usr/bin/vmtest-hello && ! hardenctl integrity status | grep -q vmtest-hello; }
check "f: dpkg's change is accepted through its md5sums (hooks)" wait_for 30 not_listed
check "f: reinstalling the same .deb is accepted too" bash -c 'dpkg -i /var/tmp/vmtest-hello_2.deb >/dev/null && sleep 1 && ! hardenctl integrity status | grep -q vmtest-hello'
check "f: no alert was raised for the package's file" bash -c '! grep -q vmtest-hello /var/tmp/integrity-signals.txt'
echo 'echo evil' >> /usr/bin/vmtest-hello
sleep 1
check "f: a file that does not match its package stays a violation" bash -c '! hardenctl integrity accept --from-dpkg && hardenctl integrity status | grep -E "vmtest-hello +modified"'
hardenctl integrity accept /usr/bin/vmtest-hello >/dev/null
# a removal during a dpkg run is dpkg's only for a path a package listed when it began: a
# maintainer script removing an admin's file under cover of the run is alerted
echo "blacklist vmtest" > /etc/modprobe.d/vmtest-admin.conf
check "f: the admin's file is accepted" hardenctl integrity accept /etc/modprobe.d/vmtest-admin.conf
mkpkg 3 >/dev/null
printf '#!/bin/sh\nrm -f /etc/modprobe.d/vmtest-admin.conf\n' > /var/tmp/pkg-3/DEBIAN/postinst
chmod 755 /var/tmp/pkg-3/DEBIAN/postinst
dpkg-deb --build /var/tmp/pkg-3 /var/tmp/vmtest-hello_3.deb >/dev/null
seen=$(wc -l < /var/tmp/integrity-signals.txt)
since() { tail -n "+$((seen + 1))" /var/tmp/integrity-signals.txt; }
check "f: a package whose script removes an admin's file installs" dpkg -i /var/tmp/vmtest-hello_3.deb
check "f: ... that removal is alerted, not accepted from dpkg" wait_for 30 bash -c "$(declare -f since); seen=$seen; since | grep -q /etc/modprobe.d/vmtest-admin.conf"
check "f: ... while the package's own new version raised nothing" bash -c "$(declare -f since); seen=$seen; ! since | grep -q /usr/bin/vmtest-hello && ! hardenctl integrity status | grep -q /usr/bin/vmtest-hello"
check "f: removing the package (dpkg -r) is accepted: its files and its lists" bash -c 'dpkg -r vmtest-hello >/dev/null && sleep 1 && ! hardenctl integrity status | grep -q vmtest-hello'
# dpkg's md5sums edited outside a dpkg run: reported in set dpkg, and they vouch for nothing
echo "0123456789abcdef0123456789abcdef  usr/bin/true" >> /var/lib/dpkg/info/coreutils.md5sums
check "f: dpkg's md5sums edited outside a dpkg run are a violation (set dpkg)" wait_for 30 bash -c 'hardenctl integrity status | grep -E "coreutils.md5sums +modified +dpkg"'
sed -i '$d' /var/lib/dpkg/info/coreutils.md5sums
kill "$mon" 2>/dev/null
hardenctl integrity events -n 20 > "$H/results/integrity-events.txt" 2>&1
# the guest's software bill of materials (validated against the schema on the host)
check "sbom: hardenctl sbom of the guest names every installed package" bash -c \
    'hardenctl sbom -o '"$H"'/results/guest.cdx.json && [ "$(grep -c "\"bom-ref\": \"pkg:deb/debian/" '"$H"'/results/guest.cdx.json)" -eq "$(dpkg-query -W -f="\${db:Status-Status}\n" | grep -c "^installed$")" ]' 
# --- (g) the signed vulnerability feed, on the real system bus and journal --------------------
install -m 0644 "$H/vulns/fleet.pub.pem" /etc/hardend/feed-key.pem
deliver() { cp "$H/vulns/$1.json" /var/lib/hardend/feed.json && cp "$H/vulns/$1.json.sig" /var/lib/hardend/feed.json.sig; }
deliver feed1
printf '[vulns]\nfeed = "/var/lib/hardend/feed.json"\ncheck_interval = "1s"\n' >> /etc/hardend/hardend.toml
systemctl reload hardend
check "g: the daemon matches its signed feed after a reload: bash's open CVE" \
    wait_for 30 bash -c 'hardenctl --json vulns | grep -q CVE-VMTEST-1'
stdbuf -oL busctl --system monitor --match "type='signal',interface='org.hardend1.Vulns'" > /var/tmp/vulns-signals.txt 2>&1 &
vmon=$!
sleep 2
deliver feed2
check "g: a new signed feed raises VulnerabilitiesFound with the new CVE only" \
    wait_for 30 bash -c 'grep -q CVE-VMTEST-2 /var/tmp/vulns-signals.txt && ! grep -q CVE-VMTEST-1 /var/tmp/vulns-signals.txt'
check "g: ... with a journal entry (MESSAGE_ID=8c2e7b4f…, CVES)" \
    bash -c 'journalctl -o verbose MESSAGE_ID=8c2e7b4f1a9d4e35b6c0f2a7d9e1b458 | grep -q "CVES=.*CVE-VMTEST-2"'
check "g: non-root may read the findings (busctl Vulns.ListFindings as nobody)" \
    bash -c "$(declare -f nobody); nobody busctl call org.hardend1 /org/hardend1 org.hardend1.Vulns ListFindings | grep -q CVE-VMTEST-2"
check "g: non-root busctl Vulns.Evaluate: Access denied" denied org.hardend1.Vulns Evaluate
# only what follows the tampering counts (deliver's two copies are not atomic)
seen=$(wc -l < /var/tmp/vulns-signals.txt)
t0=$(date +%s)
printf ' ' >> /var/lib/hardend/feed.json
check "g: the feed changed by one byte raises FeedRefused" \
    wait_for 30 bash -c "tail -n +$((seen + 1)) /var/tmp/vulns-signals.txt | grep -q FeedRefused"
check "g: ... with a journal error (MESSAGE_ID=f04a6d2c…)" \
    bash -c "journalctl -p err --since @$t0 MESSAGE_ID=f04a6d2c9b7e4183a5d1c8e6b2f9a037 | grep -q 'does not verify'"
refused_kept() { out=$(hardenctl --json vulns); [ $? = 3 ] && grep -q '"refused"' <<<"$out" && grep -q CVE-VMTEST-2 <<<"$out"; }
check "g: ... state refused (exit 3), the last verified findings kept" refused_kept
deliver feed2
check "g: the signed feed back: state ok" wait_for 30 bash -c 'hardenctl --json vulns | grep -q "\"state\": \"ok\""'
kill "$vmon" 2>/dev/null
# --- (h) metrics for node_exporter, written from inside hardend.service's sandbox ------------
prom=/var/lib/prometheus/node-exporter/hardend.prom
check "h: hardend.prom is written into node_exporter's directory (under ProtectSystem=strict)" \
    wait_for 30 grep -q '^hardend_vulns_state{state="ok"} 1' "$prom"
check "h: Debian's node_exporter serves hardend's series, without a parse error" \
    wait_for 30 bash -c 'm=$(busybox wget -q -O - http://127.0.0.1:9100/metrics) && grep -q "^hardend_bad{pillar=\"vulns\"} 0" <<<"$m" && grep -q "^node_textfile_scrape_error 0" <<<"$m"'
note "$(grep -v '^#' "$prom" | head -n 20)"
# each assigned unit's exposure, systemd's and the combined one: what hardenctl audit says
check "h: hardend.prom has mosquitto's exposure, both scores" \
    wait_for 30 grep -q '^hardend_service_exposure{unit="mosquitto.service",score="hardend"} ' "$prom"
m_sd=$(sed -n 's/^hardend_service_exposure{unit="mosquitto.service",score="systemd"} //p' "$prom")
m_hd=$(sed -n 's/^hardend_service_exposure{unit="mosquitto.service",score="hardend"} //p' "$prom")
a_row=$(hardenctl audit mosquitto.service | awk '$1 == "mosquitto.service" && $2 ~ /^[0-9]+\.[0-9]$/ { print $2, $4 }')
check "h: the metrics' exposure ($m_sd, $m_hd) is the audit's ($a_row)" test "$m_sd $m_hd" = "$a_row"

# last in phase 1 (a restarted daemon rescans: nothing above must race with that)
systemctl stop hardend
check "f: doctor: a stopped daemon is a problem" doctor_says daemon "systemctl start hardend"
systemctl start hardend
check "f: doctor is good again" hardenctl doctor

# --- (i) audit, after confinement: hardend's layers counted, device checks both ways -----------
mq_after=$(hardenctl audit mosquitto.service)
note "$mq_after"
mq_sd2=$(awk '$1 == "mosquitto.service" && $2 ~ /^[0-9]+\.[0-9]$/ { print $2 }' <<<"$mq_after")
mq_hd2=$(awk '$1 == "mosquitto.service" && $2 ~ /^[0-9]+\.[0-9]$/ { print $4 }' <<<"$mq_after")
check "i: confined mosquitto scores better ($mq_hd2) than unconfined ($mq_hd); systemd's number unchanged ($mq_sd2)" \
    awk -v a="$mq_hd2" -v b="$mq_hd" -v s1="$mq_sd" -v s2="$mq_sd2" 'BEGIN { exit !(a != "" && a < b && s1 == s2) }'
credited=$(grep "mosquitto.service credited rows:" <<<"$mq_after")
check "i: no_new_privs and the capability sets are credited as kernel-proven ($credited)" \
    bash -c 'grep -q "no-new-privs (kernel) 1" <<<"$1" && grep -q "capabilities (kernel)" <<<"$1"' _ "$credited"
# seccomp (and the namespace and socket rules in its program) only when the daemon read the
# program back from the kernel; a claimed filter earns nothing
sproof=$(hardenctl --json services | grep -A1 '"layer": "seccomp"' | sed -n 's/.*"proof": "\([a-z-]*\)".*/\1/p' | head -1)
note "seccomp proof of mosquitto:" "$(hardenctl --json services | grep -B1 -A1 '"layer": "seccomp"')"
check "i: the seccomp credit follows its proof (proof: $sproof)" \
    bash -c 'if [ "$1" = kernel-verified ]; then grep -q "seccomp (kernel)" <<<"$2"; else ! grep -Eq "seccomp|namespaces|sockets" <<<"$2"; fi' _ "$sproof" "$credited"
# a setuid binary no package installed: found, and gone when removed
install -m 4755 /bin/true /usr/local/bin/vmtest-rootshell
check "i: a planted setuid binary is an unknown setuid file (exit 3)" \
    bash -c 'out=$(hardenctl audit); rc=$?; [ $rc = 3 ] && grep -q "files.setuid-unknown: /usr/local/bin/vmtest-rootshell (setuid)" <<<"$out"'
rm -f /usr/local/bin/vmtest-rootshell
check "i: removed, the setuid inventory passes" bash -c 'hardenctl audit | grep -Eq "^pass +high +files.setuid-unknown"'
# a kernel setting, live: kptr_restrict 0 fails, 2 passes
old_kptr=$(cat /proc/sys/kernel/kptr_restrict)
sysctl -qw kernel.kptr_restrict=0
check "i: kernel.kptr_restrict = 0 fails with the sysctl remedy" \
    bash -c 'hardenctl audit | grep -q "kernel.kptr-restrict → echo .kernel.kptr_restrict = 2."'
sysctl -qw kernel.kptr_restrict=2
check "i: kernel.kptr_restrict = 2 passes" bash -c 'hardenctl audit | grep -Eq "^pass +medium +kernel.kptr-restrict"'
sysctl -qw kernel.kptr_restrict="$old_kptr"
# a listener on every interface, named with its process and unit: node_exporter on [::]:9100
listen_all() { hardenctl audit | grep -E 'net.listen-all: tcp \[::\]:9100 \(prometheus-node pid [0-9]+, prometheus-node-exporter.service\)'; }
check "i: node_exporter listening on every interface is found with its process and unit" \
    bash -c "$(declare -f listen_all); listen_all || { hardenctl audit | grep listen; false; }"
systemctl stop prometheus-node-exporter
check "i: node_exporter stopped, [::]:9100 is no longer listed" bash -c '! hardenctl audit | grep -q "\[::\]:9100"'
systemctl start prometheus-node-exporter
# benchmark: every unit and every device check, against systemd-analyze security of every unit
t0=$(date +%s%N); hardenctl --json audit > /tmp/audit.json; t1=$(date +%s%N)
systemd-analyze security --no-pager >/dev/null 2>&1; t2=$(date +%s%N)
au_ms=$(( (t1 - t0) / 1000000 )); sa_ms=$(( (t2 - t1) / 1000000 ))
rss=$(sed -n 's/.*"max_rss_kib": *\([0-9]*\).*/\1/p' /tmp/audit.json)
nunits=$(sed -n 's/.*"units": *\([0-9]*\),*$/\1/p' /tmp/audit.json | tail -1)
note "benchmark: hardenctl audit (all $nunits units + device checks) ${au_ms} ms, peak RSS ${rss} KiB; systemd-analyze security (units only) ${sa_ms} ms; ratio $(awk -v a="$au_ms" -v b="$sa_ms" 'BEGIN { if (b > 0) printf "%.2f", a / b }')"
echo "audit ${au_ms} ms rss ${rss} KiB units ${nunits}; systemd-analyze ${sa_ms} ms" > "$H/results/audit-bench.txt"
fi
