# SPDX-License-Identifier: GPL-2.0-or-later
# Discovery files (QEMU docs/interop/vhost-user.json, @VhostUserBackend) and
# `make install` / `make uninstall`. Included by the Makefile once DEVICES, B,
# BIN, bindir, libexecdir, datadir and DESTDIR are set.
#
# Installed layout:
#   $(bindir)/vhostbox
#   $(libexecdir)/vhost-user-<name> -> ../bin/vhostbox (relative: each device, each alias)
#   $(datadir)/qemu/vhost-user/50-vhostbox-<name>.json      ("binary": the libexec link)
#   $(mandir)/man1/vhostbox.1, vhost-user-<name>.1 (aliases: .so links)
#   $(systemdunitdir)/vhost-user-<name>@.socket and @.service (socket-activated templates)
# Names, aliases and the files' contents come from the binary (`vhostbox --list`,
# `--discovery-file`, `--man`) and the device's declaration lines: each device
# declares them once, in its source.

JSON_DIR   := $(datadir)/qemu/vhost-user
JSON_FILES := $(DEVICES:%=$(B)/json/50-vhostbox-%.json)
# The link's target, relative to the link's directory, so a DESTDIR tree relocates.
LINK_TARGET = $(shell realpath -m --relative-to='$(libexecdir)' '$(bindir)/vhostbox')
# Every name the built personalities answer to (names, then aliases).
INSTALL_NAMES = $(shell '$(abspath $(BIN))' --list | cut -d' ' -f1,3-)

MAN_PAGES  := $(B)/man/vhostbox.1 $(DEVICES:%=$(B)/man/vhost-user-%.1)
UNITS      := $(foreach d,$(DEVICES),$(B)/systemd/vhost-user-$(d)@.socket $(B)/systemd/vhost-user-$(d)@.service)

json-files: $(JSON_FILES)
man: $(MAN_PAGES)
units: $(UNITS)

# Generated files are rewritten only when their content changed.
define replace-if-changed
@cmp -s $@.tmp $@ || mv $@.tmp $@; rm -f $@.tmp
endef

$(B)/man/vhostbox.1: $(BIN) FORCE
	@mkdir -p $(@D)
	@'$(abspath $(BIN))' --man > $@.tmp
	$(replace-if-changed)

$(B)/man/vhost-user-%.1: $(BIN) FORCE
	@mkdir -p $(@D)
	@'$(abspath $(BIN))' $* --man > $@.tmp
	$(replace-if-changed)

# Socket-activated templates: the instance (%i) names its socket and its options file.
$(B)/systemd/vhost-user-%@.socket: FORCE
	@mkdir -p $(@D)
	@printf '%s\n' '[Unit]' 'Description=vhostbox vhost-user-$* back-end socket (%i)' 'Documentation=man:vhost-user-$*(1)' \
		'' '[Socket]' 'ListenStream=/run/vhostbox/vhost-user-$*@%i.sock' 'SocketMode=0600' \
		'' '[Install]' 'WantedBy=sockets.target' > $@.tmp
	$(replace-if-changed)

$(B)/systemd/vhost-user-%@.service: FORCE
	@mkdir -p $(@D)
	@printf '%s\n' '[Unit]' 'Description=vhostbox vhost-user-$* back-end (%i)' 'Documentation=man:vhost-user-$*(1)' \
		'Requires=vhost-user-$*@%i.socket' 'After=vhost-user-$*@%i.socket' \
		'' '[Service]' 'Type=notify' 'EnvironmentFile=-/etc/vhostbox/vhost-user-$*@%i.conf' \
		'ExecStart=$(libexecdir)/vhost-user-$* $$VHOSTBOX_ARGS' \
		'NoNewPrivileges=yes' 'ProtectSystem=strict' 'ProtectHome=yes' 'PrivateTmp=yes' \
		'ProtectKernelTunables=yes' 'ProtectKernelModules=yes' 'ProtectControlGroups=yes' \
		'RestrictRealtime=yes' 'RestrictSUIDSGID=yes' 'LockPersonality=yes' > $@.tmp
	@sed -n 's/^ \* systemd: *//p' dev/$*.c >> $@.tmp
	$(replace-if-changed)

# Rewritten only when the content changed (the installed path, the binary's declaration).
$(B)/json/50-vhostbox-%.json: $(BIN) FORCE
	@mkdir -p $(@D)
	@'$(abspath $(BIN))' --discovery-file $* '$(libexecdir)/vhost-user-$*' > $@.tmp
	@cmp -s $@.tmp $@ || mv $@.tmp $@; rm -f $@.tmp

install: $(BIN) $(JSON_FILES) $(MAN_PAGES) $(UNITS)
	install -d '$(DESTDIR)$(bindir)' '$(DESTDIR)$(libexecdir)' '$(DESTDIR)$(JSON_DIR)' \
		'$(DESTDIR)$(mandir)/man1' '$(DESTDIR)$(systemdunitdir)'
	install -m 0755 '$(BIN)' '$(DESTDIR)$(bindir)/vhostbox'
	@for n in $(INSTALL_NAMES); do \
		echo "ln -sfn $(LINK_TARGET) $(DESTDIR)$(libexecdir)/vhost-user-$$n"; \
		ln -sfn '$(LINK_TARGET)' '$(DESTDIR)$(libexecdir)'/vhost-user-$$n || exit 1; \
	done
	$(if $(JSON_FILES),install -m 0644 $(JSON_FILES) '$(DESTDIR)$(JSON_DIR)/')
	install -m 0644 $(MAN_PAGES) '$(DESTDIR)$(mandir)/man1/'
	@'$(abspath $(BIN))' --list | while read -r name type aliases; do \
		for a in $$aliases; do \
			echo ".so man1/vhost-user-$$name.1" > '$(DESTDIR)$(mandir)/man1'/vhost-user-$$a.1 || exit 1; \
		done; \
	done
	$(if $(UNITS),install -m 0644 $(UNITS) '$(DESTDIR)$(systemdunitdir)/')

# Removes what install put there: links are removed only if they still point to vhostbox.
uninstall:
	rm -f '$(DESTDIR)$(bindir)/vhostbox'
	@for n in $(INSTALL_NAMES); do \
		l='$(DESTDIR)$(libexecdir)'/vhost-user-$$n; \
		if [ -L "$$l" ] && [ "$$(readlink "$$l")" = '$(LINK_TARGET)' ]; then \
			echo "rm -f $$l"; rm -f "$$l" || exit 1; \
		fi; \
	done
	rm -f $(DEVICES:%='$(DESTDIR)$(JSON_DIR)/50-vhostbox-%.json')
	rm -f '$(DESTDIR)$(mandir)/man1/vhostbox.1' $(INSTALL_NAMES:%='$(DESTDIR)$(mandir)/man1/vhost-user-%.1')
	rm -f $(foreach d,$(DEVICES),'$(DESTDIR)$(systemdunitdir)/vhost-user-$(d)@.socket' \
		'$(DESTDIR)$(systemdunitdir)/vhost-user-$(d)@.service')

.PHONY: json-files man units install uninstall
