/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "json/describe.h"

int vu_describe_print(const struct vu_device_type *t, const char *binary)
{
	char description[256];
	json_t *root = json_object();
	int r = -1;

	snprintf(description, sizeof(description), "vhostbox: %s", t->summary);
	if (root && !json_object_set_new(root, "description", json_string(description)) &&
	    !json_object_set_new(root, "type", json_string(t->schema_type)) &&
	    !json_object_set_new(root, "binary", json_string(binary))) {
		char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (text) {
			r = printf("%s\n", text) < 0 || fflush(stdout) ? -1 : 0;
			free(text);
		}
	}
	json_decref(root);
	return r;
}
