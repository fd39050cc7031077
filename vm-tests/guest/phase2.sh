# Phase 2 (sourced by guest/run), after a reboot: scenario d (what must survive a reboot),
# then the package's remove and purge.

enforced() { hardenctl services | grep -E "^$1 +[^ ]+ +(enforced|partial) "; }
check "d: hardend.service is active after the reboot" systemctl is-active hardend
check "d: mosquitto is still confined after the reboot" wait_for 20 enforced mosquitto.service
note "$(hardenctl services 2>&1)"
fp=$(hardenctl --json identity show | sed -n 's/.*"fingerprint": *"\([0-9a-f]*\)".*/\1/p')
check "d: the TPM identity has the same fingerprint ($fp)" test "$fp" = "$(cat "$H/results/fingerprint")"
check "d: the identity is ok (the key loads into the TPM)" hardenctl identity show
ak1=$(sed -n 's/.*"ak_name": *"\([0-9a-f]*\)".*/\1/p' "$H/results/enroll.json")
ak2=$(hardenctl --json identity enroll --ek-ca "$H/ek-ca" | sed -n 's/.*"ak_name": *"\([0-9a-f]*\)".*/\1/p')
check "d: the same attestation key after the reboot ($ak2)" test -n "$ak1" -a "$ak1" = "$ak2"
hardenctl identity quote --nonce 5eed0001 > /var/tmp/quote.json
check "d: a quote after the reboot verifies against the key enrolled before it" \
    hardenctl identity verify-quote /var/tmp/quote.json --nonce 5eed0001 --ak "$H/results/enroll.json"
if [ "$smoke" = 0 ]; then
check "d: the integrity baseline is trusted after the reboot" bash -c 'hardenctl integrity status | grep -Eq "^state +(ok|violations)"'
# the offline downgrade: the sealed key deleted and the TPM configured away, so that a key
# file would be made; the TPM's own counter (NV 0x01484401) says the baseline was sealed
idir=/var/lib/hardend/integrity
check "d: the baseline key is TPM-sealed" bash -c 'hardenctl --json integrity status | grep -q "\"key\": *\"tpm\""'
systemctl stop hardend
cp -a /etc/hardend/hardend.toml /var/tmp/hardend.toml.bak
mkdir -p /var/tmp/sealed && cp -a "$idir"/mac-key.sealed.* /var/tmp/sealed/
rm -f "$idir"/mac-key.sealed.*
printf '[identity]\ntcti = "none"\n' >> /etc/hardend/hardend.toml
systemctl start hardend
check "d: no TPM configured and the sealed key gone: tampered, the TPM still holds the counter" \
    wait_for 30 bash -c 'hardenctl integrity status | grep -q "holds hardend.s baseline counter"'
check "d: ... and no key file is made by init" bash -c '! hardenctl integrity init && [ ! -e '"$idir"'/mac-key ]'
systemctl stop hardend
cp -a /var/tmp/hardend.toml.bak /etc/hardend/hardend.toml
cp -a /var/tmp/sealed/mac-key.sealed.* "$idir"/
systemctl start hardend
check "d: restored: the baseline is trusted again" wait_for 30 bash -c 'hardenctl integrity status | grep -Eq "^state +(ok|violations)"'

fi

# --- remove and purge --------------------------------------------------------------------------
check "remove: dpkg -r hardend" dpkg -r hardend
check "remove: no drop-in points at the removed wrapper" bash -c '! grep -rl hardend-exec /etc/systemd/system /run/systemd/system'
check "remove: mosquitto restarts (unconfined) without the wrapper" bash -c 'systemctl restart mosquitto && systemctl is-active mosquitto'
check "remove: the state is kept until purge" test -d /var/lib/hardend
check "purge: dpkg --purge hardend" dpkg --purge hardend
check "purge: state and configuration are gone" bash -c '[ ! -e /var/lib/hardend ] && [ ! -e /etc/hardend/hardend.toml ] && [ ! -e /etc/dpkg/dpkg.cfg.d/hardend ]'
[ "$smoke" = 1 ] || check "purge: dpkg runs cleanly without hardend's hooks" dpkg -i /var/tmp/vmtest-hello_1.deb
