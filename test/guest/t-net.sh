#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# vhost-user-net in real guests (QEMU -netdev vhost-user + virtio-net-pci):
#  1. tap: `vhostbox net --tap` inside a network namespace this test creates; the
#     guest gets its address by DHCP (busybox udhcpd on the tap), pings the host's
#     end and downloads a 4 MiB file over HTTP (TCP with the offloads passed through);
#  2. switch: two guests on two ports of one vhostbox ping each other.
# VU_PACKED=1 (t-net-packed.sh): the same with packed virtqueues.
set -u
. "$(dirname "$0")/lib.sh"

vu_require_guest guest-net virtio_pci virtio_net
[ -x "$VHOSTBOX" ] || { vu_fail guest-net "no binary $VHOSTBOX"; exit 1; }
vu_vhostbox_has net || vu_skip_all guest-net "$VHOSTBOX was built without net"
vu_qemu_has_device virtio-net-pci || vu_skip_all guest-net "$QEMU has no virtio-net-pci"

# A guest's network: eth0 up with a static address, or by DHCP when none is given.
# shellcheck disable=SC2016 # expanded in the guest
guest_net_setup='
wait_for /sys/class/net/eth0 || exit 1
ip link set lo up
ip link set eth0 up
guest_features
echo "GUEST-RESULT: features $(cat /sys/class/net/eth0/device/features 2>/dev/null)"
if [ -n "${ADDR:-}" ]; then
	ip addr add "$ADDR/24" dev eth0
else
	printf "#!/bin/sh\n[ \"\$1\" = bound ] && ip addr add \$ip/\${mask:-24} dev \$interface\nexit 0\n" > /tmp/dhcp.sh
	chmod +x /tmp/dhcp.sh
	udhcpc -i eth0 -s /tmp/dhcp.sh -n -q -t 10 -T 2 > /dev/null 2>&1
fi
echo "GUEST-RESULT: addr $(ip -4 addr show eth0 | sed -n "s/.*inet \([0-9.]*\).*/\1/p")"
'

# ---- 1. tap in a network namespace -----------------------------------------------
ns=vhostbox-t-net-$$
tap=vbxtap$$
if ! vu_netns_add "$ns"; then
	vu_skip guest-net-tap "$VU_WHY"
else
	# The back-end runs inside the namespace, where it creates the tap.
	if ! VU_NETNS=$ns vu_start_backend net0 net --tap="${tap:0:15}"; then
		vu_fail guest-net-tap "$VU_WHY"
	else
		tap=${tap:0:15}
		ip netns exec "$ns" ip addr add 10.0.2.1/24 dev "$tap"
		ip netns exec "$ns" ip link set "$tap" up
		mkdir -p "$VU_TMP/www"
		head -c 4194304 /dev/urandom > "$VU_TMP/www/blob"
		want_md5=$(md5sum < "$VU_TMP/www/blob" | cut -c1-32)
		cat > "$VU_TMP/udhcpd.conf" <<-EOF
		start 10.0.2.15
		end 10.0.2.20
		interface $tap
		option subnet 255.255.255.0
		lease_file $VU_TMP/leases
		pidfile $VU_TMP/udhcpd.pid
		EOF
		: > "$VU_TMP/leases"
		ip netns exec "$ns" busybox udhcpd -f "$VU_TMP/udhcpd.conf" > "$VU_TMP/udhcpd.log" 2>&1 &
		vu_track $!
		ip netns exec "$ns" busybox httpd -f -p 10.0.2.1:8080 -h "$VU_TMP/www" > "$VU_TMP/httpd.log" 2>&1 &
		vu_track $!

		{ echo "$guest_net_setup"; cat <<-'EOF'
		ping -c 3 -W 5 10.0.2.1 > /tmp/ping.out 2>&1 && echo "GUEST-RESULT: ping ok" ||
			{ echo "GUEST-RESULT: ping failed"; cat /tmp/ping.out; }
		t0=$(cut -d' ' -f1 /proc/uptime)
		wget -q -O /tmp/blob http://10.0.2.1:8080/blob
		t1=$(cut -d' ' -f1 /proc/uptime)
		echo "GUEST-RESULT: http $(md5sum < /tmp/blob | cut -c1-32) $(wc -c < /tmp/blob) $t0 $t1"
		EOF
		} > "$VU_TMP/guest-tap.sh"
		# shellcheck disable=SC2054 # commas inside QEMU arguments
		vu_start_qemu "$VU_TMP/guest-tap.sh" -chardev "$(vu_chardev net0)" \
			-netdev vhost-user,id=n0,chardev=net0 -device "virtio-net-pci,netdev=n0,mac=52:54:00:00:02:0f$(vu_packed_opt)"
		if ! vu_wait_serial 'GUEST-RESULT: http ' 90; then
			vu_fail guest-net-tap "$VU_WHY"
		else
			addr=$(vu_guest_result addr)
			vu_check_layout guest-net-tap
			read -r md5 size t0 t1 <<< "$(vu_guest_result http)"
			echo "# guest features $(vu_guest_result features); address '$addr'; 4 MiB over HTTP in $(awk "BEGIN { print $t1 - $t0 }") s"
			case $addr in
			10.0.2.1[5-9] | 10.0.2.20) vu_pass guest-net-tap-dhcp ;;
			*) vu_fail guest-net-tap-dhcp "the guest's address is '$addr'" ;;
			esac
			if [ "$(vu_guest_result ping)" = ok ]; then vu_pass guest-net-tap-ping
			else vu_fail guest-net-tap-ping "the guest could not ping 10.0.2.1"; fi
			if [ "$md5" = "$want_md5" ] && [ "$size" = 4194304 ]; then vu_pass guest-net-tap-http
			else vu_fail guest-net-tap-http "got $size bytes with md5 $md5, want 4194304 with $want_md5"; fi
		fi
		vu_stop_qemu 5
	fi
fi

# ---- 2. two guests on the switch ------------------------------------------------------
if ! vu_start_backend sw net --socket-path="$(vu_socket sw2)"; then
	vu_fail guest-net-switch "$VU_WHY"
	exit 1
fi
# The second socket appears after the first: wait for it as well.
for _ in $(seq 50); do [ -S "$(vu_socket sw2)" ] && break; sleep 0.1; done

{ echo ADDR=10.0.3.2; echo "$guest_net_setup"; echo 'sleep 60'; } > "$VU_TMP/guest-b.sh"
{ echo ADDR=10.0.3.1; echo "$guest_net_setup"; cat <<-'EOF'
ping_peer 10.0.3.2
EOF
} > "$VU_TMP/guest-a.sh"

# shellcheck disable=SC2054
vu_start_qemu "$VU_TMP/guest-b.sh" -chardev "socket,id=c1,path=$(vu_socket sw2)" \
	-netdev vhost-user,id=n1,chardev=c1 -device "virtio-net-pci,netdev=n1,mac=52:54:00:00:03:02$(vu_packed_opt)"
b_pid=$VU_QEMU_PID b_serial=$VU_SERIAL
# shellcheck disable=SC2054
vu_start_qemu "$VU_TMP/guest-a.sh" -chardev "$(vu_chardev sw)" \
	-netdev vhost-user,id=n0,chardev=sw -device "virtio-net-pci,netdev=n0,mac=52:54:00:00:03:01$(vu_packed_opt)"
if VU_SERIAL=$b_serial VU_QEMU_PID=$b_pid vu_wait_serial 'GUEST-RESULT: addr ' 60 &&
   vu_wait_serial 'GUEST-RESULT: ping ' 90; then
	vu_check_layout guest-net-switch
	if [ "$(vu_guest_result ping)" = ok ]; then vu_pass guest-net-switch-ping
	else vu_fail guest-net-switch-ping "guest a could not ping guest b: $(tr -d '\r' < "$VU_SERIAL" | grep -A3 'ping failed' | tr '\n' ' ')"; fi
else
	vu_fail guest-net-switch-ping "$VU_WHY"
fi
vu_stop_qemu 5
VU_QEMU_PID=$b_pid vu_stop_qemu 5
