/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "caps/caps.h"

int vu_caps_print(const struct vu_device_type *t)
{
	json_t *root = json_object();
	int r = -1;

	if (!root || json_object_set_new(root, "type", json_string(t->schema_type)) < 0)
		goto out;
	/*
	 * Types whose schema defines features (their options flagged as capabilities)
	 * get the member; only the features this host can provide are listed.
	 */
	json_t *features = NULL;
	for (const struct vu_option *o = t->options; o && o->name; o++) {
		if (!(o->flags & VU_OPT_CAPABILITY))
			continue;
		if (!features && (!(features = json_array()) ||
				  json_object_set_new(root, "features", features) < 0))
			goto out;
		if (!t->cap_available || t->cap_available(o->name))
			json_array_append_new(features, json_string(o->name));
	}
	char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (text) {
		r = printf("%s\n", text) < 0 || fflush(stdout) ? -1 : 0;
		free(text);
	}
out:
	json_decref(root);
	return r;
}
