#!/bin/sh
# Starts one demo partner's sshd: host key and the hub's public key from Compose secrets, the
# partner's files (written by the partner-data service) as a root-owned chroot, as sshd requires.
set -eu
feed="${PARTNER_FEED:?set PARTNER_FEED to the feed this server plays (police, transit, guards)}"
root="/srv/partners/$feed"
[ -d "$root" ] || { echo "no files for $feed in $root" >&2; exit 1; }
install -m 600 -o root -g root /run/secrets/host_key /etc/ssh/ssh_host_ed25519_key
install -d -m 755 /etc/ssh/authorized_keys
install -m 644 -o root -g root /run/secrets/authorized_key /etc/ssh/authorized_keys/partner
chown root:root /srv/partners "$root"
chmod 755 /srv/partners "$root"
# The folders the hub writes to, inside the chroot (space-separated in PARTNER_WRITABLE): the
# receipts directory of the partner's contract, and the inbox of a partner that receives
# deliveries by push (its agreement's delivery.directory). Nothing else is writable.
for dir in ${PARTNER_WRITABLE:-}; do
  install -d -o root -g root -m 755 "$(dirname "$root/${dir#/}")"
  install -d -o partner -g partner -m 755 "$root/${dir#/}"
done
sed -e "s|@CHROOT@|$root|" -e "s|@PORT@|${SFTP_PORT:-22}|" -e "s|@LISTEN@|${SFTP_LISTEN:-0.0.0.0}|" \
  /etc/ssh/sshd_config.template > /etc/ssh/sshd_config
/usr/sbin/sshd -t
exec /usr/sbin/sshd -D -e
