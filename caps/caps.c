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
	/* Only types whose schema defines features get the member; only working ones are listed. */
	if (t->cap_features) {
		json_t *features = json_array();
		if (json_object_set_new(root, "features", features) < 0)
			goto out;
		for (const char *const *f = t->cap_features; *f; f++)
			if (!t->cap_available || t->cap_available(*f))
				json_array_append_new(features, json_string(*f));
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
