# SPDX-License-Identifier: GPL-2.0-or-later
# Discovery files (QEMU docs/interop/vhost-user.json, @VhostUserBackend) and
# `make install` / `make uninstall`. Included by the Makefile once DEVICES, B,
# BIN, bindir, libexecdir, datadir and DESTDIR are set.
#
# Installed layout:
#   $(bindir)/vhostbox
#   $(libexecdir)/vhost-user-<name> -> $(bindir)/vhostbox   (each device, each alias)
#   $(datadir)/qemu/vhost-user/50-vhostbox-<name>.json      ("binary": the libexec link)

# More names a personality is installed under.
blk_ALIASES ?= block

JSON_DIR      := $(datadir)/qemu/vhost-user
JSON_FILES    := $(DEVICES:%=$(B)/json/50-vhostbox-%.json)
INSTALL_NAMES := $(DEVICES) $(foreach d,$(DEVICES),$($(d)_ALIASES))

json-files: $(JSON_FILES)

# Rewritten only when the template or the installed path changed: template lines
# starting with # (the licence line) are dropped, @BINARY@ is the libexec link.
$(B)/json/50-vhostbox-%.json: json/50-vhostbox-%.json.in FORCE
	@mkdir -p $(@D)
	@sed -e '/^#/d' -e 's|@BINARY@|$(libexecdir)/vhost-user-$*|g' $< > $@.tmp
	@cmp -s $@.tmp $@ || mv $@.tmp $@; rm -f $@.tmp

install: $(BIN) $(JSON_FILES)
	install -d '$(DESTDIR)$(bindir)' '$(DESTDIR)$(libexecdir)' '$(DESTDIR)$(JSON_DIR)'
	install -m 0755 '$(BIN)' '$(DESTDIR)$(bindir)/vhostbox'
	@for n in $(INSTALL_NAMES); do \
		echo "ln -sfn $(bindir)/vhostbox $(DESTDIR)$(libexecdir)/vhost-user-$$n"; \
		ln -sfn '$(bindir)/vhostbox' '$(DESTDIR)$(libexecdir)'/vhost-user-$$n || exit 1; \
	done
	$(if $(JSON_FILES),install -m 0644 $(JSON_FILES) '$(DESTDIR)$(JSON_DIR)/')

# Removes what install put there: links are removed only if they still point to vhostbox.
uninstall:
	rm -f '$(DESTDIR)$(bindir)/vhostbox'
	@for n in $(INSTALL_NAMES); do \
		l='$(DESTDIR)$(libexecdir)'/vhost-user-$$n; \
		if [ -L "$$l" ] && [ "$$(readlink "$$l")" = '$(bindir)/vhostbox' ]; then \
			echo "rm -f $$l"; rm -f "$$l" || exit 1; \
		fi; \
	done
	rm -f $(DEVICES:%='$(DESTDIR)$(JSON_DIR)/50-vhostbox-%.json')

.PHONY: json-files install uninstall
