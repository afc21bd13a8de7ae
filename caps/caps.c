/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "caps/caps.h"

/* Appends name (if not NULL) to the "features" member, created on first use; -1 when out of memory. */
static int add_feature(json_t *root, json_t **features, const char *name)
{
	if (!*features && (!(*features = json_array()) || json_object_set_new(root, "features", *features) < 0))
		return -1;
	return name ? json_array_append_new(*features, json_string(name)) : 0;
}

int vu_caps_print(const struct vu_device_type *t)
{
	json_t *root = json_object();
	int r = -1;

	if (!root || json_object_set_new(root, "type", json_string(t->schema_type)) < 0)
		goto out;
	/*
	 * Types whose schema defines features (their options flagged as capabilities,
	 * and the type's own list) get the member; only the features this host can
	 * provide are listed.
	 */
	json_t *features = NULL;
	for (const struct vu_option *o = t->options; o && o->name; o++)
		if (o->flags & VU_OPT_CAPABILITY &&
		    add_feature(root, &features, !t->cap_available || t->cap_available(o->name) ? o->name : NULL) < 0)
			goto out;
	for (const char *const *f = t->schema_features; f && *f; f++)
		if (add_feature(root, &features, *f) < 0)
			goto out;
	char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (text) {
		r = printf("%s\n", text) < 0 || fflush(stdout) ? -1 : 0;
		free(text);
	}
out:
	json_decref(root);
	return r;
}
