#!/usr/bin/env bash
# The recipe of the Debian 12 image that ./scripts/e2e-vm boots: a stand-in for a
# fresh Debian VPS. Usage: scripts/e2e/vm-image.sh OUT_DIR
#
# Writes OUT_DIR/disk.img (raw ext4, 8 GiB sparse), OUT_DIR/vmlinuz and
# OUT_DIR/initrd.img. ./scripts/e2e-vm keys its image cache by a hash of this file,
# so any change here rebuilds the image on the next run.
#
# The image is debootstrap's minbase plus what a minimal cloud server has (systemd,
# dbus, OpenSSH, DHCP networking, curl, sudo) and Debian's cloud kernel, which has
# the virtio drivers as modules. It has no SSH host keys, no root password and no
# authorized key: at every boot the unit brokeforge-e2e-harness.service
# (before ssh.service) generates missing host keys and reads two values from the
# kernel command line that the harness passes per run:
#   brokeforge_e2e.ssh_port=N   sshd listens on port N as well as on 22
#   brokeforge_e2e.key=BASE64   an OpenSSH public key (base64 of the whole line)
#                               added to root's authorized_keys
# so each run has its own throwaway harness key and host keys without touching the
# cached image. It also runs a TCP responder on port 8080 (a systemd socket that
# answers "brokeforge-e2e-probe") for checking the firewall from outside.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 OUT_DIR" >&2
    exit 2
fi
out=$1
mirror=${BROKEFORGE_VM_MIRROR:-http://deb.debian.org/debian}
security_mirror=${BROKEFORGE_VM_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

mkdir -p "$out"
rootfs=$(mktemp -d /var/tmp/brokeforge-vm-rootfs.XXXXXX)
# The root of the file system, readable by apt's unprivileged downloader too.
chmod 0755 "$rootfs"
mounted=()
cleanup() {
    local index
    for ((index = ${#mounted[@]} - 1; index >= 0; index--)); do
        umount -l "${mounted[$index]}" 2>/dev/null || true
    done
    rm -rf --one-file-system "$rootfs"
}
trap cleanup EXIT

echo "debootstrap (minbase, bookworm) into $rootfs"
debootstrap --variant=minbase \
    --include=systemd,systemd-sysv,dbus,udev,kmod,netbase,openssh-server,iproute2,ifupdown,isc-dhcp-client,ca-certificates,sudo,curl,procps,less \
    bookworm "$rootfs" "$mirror" >"$out/debootstrap.log" 2>&1 || {
    tail -n 30 "$out/debootstrap.log" >&2
    exit 1
}

for fs in proc sys dev; do
    mount --bind "/$fs" "$rootfs/$fs"
    mounted+=("$rootfs/$fs")
done

# The archive as a Debian cloud image lists it: the release, its updates and the
# security archive.
cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security_mirror bookworm-security main
EOF
# No daemon may start inside the chroot while packages install.
printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
chmod 0755 "$rootfs/usr/sbin/policy-rc.d"

echo "installing the cloud kernel and the initramfs"
chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive LC_ALL=C apt-get update -qq
chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive LC_ALL=C \
    apt-get install -y -qq --no-install-recommends linux-image-cloud-amd64 initramfs-tools \
    >"$out/kernel-install.log" 2>&1 || {
    tail -n 30 "$out/kernel-install.log" >&2
    exit 1
}
rm -f "$rootfs/usr/sbin/policy-rc.d"

echo "configuring the system"
echo brokeforge-e2e >"$rootfs/etc/hostname"
cat >"$rootfs/etc/hosts" <<'EOF'
127.0.0.1 localhost
127.0.1.1 brokeforge-e2e
::1 localhost ip6-localhost ip6-loopback
EOF
cat >"$rootfs/etc/network/interfaces" <<'EOF'
auto lo
iface lo inet loopback

auto eth0
iface eth0 inet dhcp
EOF
echo '/dev/vda / ext4 defaults 0 1' >"$rootfs/etc/fstab"
# Root logs in with keys only, as on a cloud server.
chroot "$rootfs" passwd -l root >/dev/null
# Host keys are generated at boot, so every run has its own.
rm -f "$rootfs"/etc/ssh/ssh_host_*

cat >"$rootfs/usr/local/sbin/brokeforge-e2e-harness" <<'EOF'
#!/bin/sh
# Applies the per-run settings of BrokeForge's VM harness from the kernel command
# line (see scripts/e2e/vm-image.sh in BrokeForge's repository).
set -eu
ssh-keygen -A
for word in $(cat /proc/cmdline); do
    case $word in
        brokeforge_e2e.ssh_port=*)
            port=${word#*=}
            printf 'Port 22\nPort %s\n' "$port" >/etc/ssh/sshd_config.d/50-brokeforge-e2e-ports.conf
            ;;
        brokeforge_e2e.key=*)
            key=$(printf '%s' "${word#*=}" | base64 -d)
            install -d -m 0700 /root/.ssh
            touch /root/.ssh/authorized_keys
            chmod 0600 /root/.ssh/authorized_keys
            grep -qxF "$key" /root/.ssh/authorized_keys || printf '%s\n' "$key" >>/root/.ssh/authorized_keys
            ;;
    esac
done
EOF
chmod 0755 "$rootfs/usr/local/sbin/brokeforge-e2e-harness"
cat >"$rootfs/etc/systemd/system/brokeforge-e2e-harness.service" <<'EOF'
[Unit]
Description=Per-run settings of BrokeForge's VM harness
Before=ssh.service
After=local-fs.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/brokeforge-e2e-harness

[Install]
WantedBy=multi-user.target
EOF
# A TCP responder on port 8080 that answers one line and closes, for checking from
# outside what the firewall lets in (systemd socket activation: no extra package).
cat >"$rootfs/etc/systemd/system/brokeforge-e2e-probe.socket" <<'EOF'
[Unit]
Description=TCP probe for BrokeForge's firewall checks

[Socket]
ListenStream=8080
Accept=yes

[Install]
WantedBy=sockets.target
EOF
cat >"$rootfs/etc/systemd/system/brokeforge-e2e-probe@.service" <<'EOF'
[Unit]
Description=TCP probe for BrokeForge's firewall checks (one connection)

[Service]
ExecStart=/bin/echo brokeforge-e2e-probe
StandardInput=socket
StandardOutput=socket
EOF
chroot "$rootfs" systemctl enable brokeforge-e2e-harness.service >/dev/null 2>&1
chroot "$rootfs" systemctl enable brokeforge-e2e-probe.socket >/dev/null 2>&1
chroot "$rootfs" systemctl enable ssh.service >/dev/null 2>&1

# dpkg syncs every file it unpacks; under emulation those syncs cost much and buy
# nothing on a disk thrown away after each run. This changes how fast packages
# install, not what BrokeForge's plans do.
echo force-unsafe-io >"$rootfs/etc/dpkg/dpkg.cfg.d/brokeforge-e2e-unsafe-io"
# Like Debian's and Ubuntu's minimal cloud images: no manual pages, no info pages and
# no documentation but the licences, and no man-db index rebuild after each install.
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/brokeforge-e2e-minimal" <<'EOF'
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
EOF
echo 'man-db man-db/auto-update boolean false' | chroot "$rootfs" debconf-set-selections

chroot "$rootfs" apt-get clean

# apt's download cache is filled here, at native speed, with the packages that
# provisioning installs on Debian 12. It is only a cache: BrokeForge's plans still
# run apt-get update and install in the VM, and anything missing or newer in the
# archive is downloaded there.
echo "filling apt's download cache"
chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive LC_ALL=C apt-get install -y -qq --download-only \
    systemd-timesyncd ufw nginx cron supervisor nodejs npm composer unzip git \
    php8.2-fpm php8.2-cli php8.2-mbstring php8.2-xml php8.2-curl php8.2-zip php8.2-intl php8.2-bcmath \
    php8.2-mysql php8.2-pgsql php8.2-sqlite3 php8.2-gd php8.2-readline php8.2-opcache \
    >"$out/download-cache.log" 2>&1 || {
    tail -n 30 "$out/download-cache.log" >&2
    exit 1
}
rm -rf "$rootfs"/var/lib/apt/lists/*

for index in "${!mounted[@]}"; do
    umount "${mounted[$index]}"
done
mounted=()

echo "extracting the kernel and writing the disk image"
kernel=$(find "$rootfs/boot" -maxdepth 1 -name 'vmlinuz-*' | sort -V | tail -n 1)
initrd=$(find "$rootfs/boot" -maxdepth 1 -name 'initrd.img-*' | sort -V | tail -n 1)
if [ -z "$kernel" ] || [ -z "$initrd" ]; then
    echo "error: no kernel or initrd in $rootfs/boot" >&2
    exit 1
fi
cp "$kernel" "$out/vmlinuz"
cp "$initrd" "$out/initrd.img"
rm -f "$out/disk.img"
truncate -s 8G "$out/disk.img"
mkfs.ext4 -q -L brokeforge-e2e -d "$rootfs" "$out/disk.img"
echo "image ready in $out"
