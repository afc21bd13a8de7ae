# SPDX-License-Identifier: GPL-2.0-or-later
# Discovery files (QEMU docs/interop/vhost-user.json, @VhostUserBackend) and
# `make install` / `make uninstall`. Included by the Makefile once DEVICES, B,
# BIN, bindir, libexecdir, datadir and DESTDIR are set.
#
# Installed layout:
#   $(bindir)/vhostbox
#   $(libexecdir)/vhost-user-<name> -> ../bin/vhostbox (relative: each device, each alias)
#   $(datadir)/qemu/vhost-user/50-vhostbox-<name>.json      ("binary": the libexec link)
# Names, aliases and the files' contents come from the binary (`vhostbox --list`,
# `vhostbox --discovery-file`): each device declares them once, in its source.

JSON_DIR   := $(datadir)/qemu/vhost-user
JSON_FILES := $(DEVICES:%=$(B)/json/50-vhostbox-%.json)
# The link's target, relative to the link's directory, so a DESTDIR tree relocates.
LINK_TARGET = $(shell realpath -m --relative-to='$(libexecdir)' '$(bindir)/vhostbox')
# Every name the built personalities answer to (names, then aliases).
INSTALL_NAMES = $(shell '$(abspath $(BIN))' --list | cut -d' ' -f1,3-)

json-files: $(JSON_FILES)

# Rewritten only when the content changed (the installed path, the binary's declaration).
$(B)/json/50-vhostbox-%.json: $(BIN) FORCE
	@mkdir -p $(@D)
	@'$(abspath $(BIN))' --discovery-file $* '$(libexecdir)/vhost-user-$*' > $@.tmp
	@cmp -s $@.tmp $@ || mv $@.tmp $@; rm -f $@.tmp

install: $(BIN) $(JSON_FILES)
	install -d '$(DESTDIR)$(bindir)' '$(DESTDIR)$(libexecdir)' '$(DESTDIR)$(JSON_DIR)'
	install -m 0755 '$(BIN)' '$(DESTDIR)$(bindir)/vhostbox'
	@for n in $(INSTALL_NAMES); do \
		echo "ln -sfn $(LINK_TARGET) $(DESTDIR)$(libexecdir)/vhost-user-$$n"; \
		ln -sfn '$(LINK_TARGET)' '$(DESTDIR)$(libexecdir)'/vhost-user-$$n || exit 1; \
	done
	$(if $(JSON_FILES),install -m 0644 $(JSON_FILES) '$(DESTDIR)$(JSON_DIR)/')

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

.PHONY: json-files install uninstall
