/*
 * libFuzzer target: the strict safetensors reader (tools/cli/safetensors.c) on an arbitrary file
 * image. Beyond "no crash, no sanitizer report", it checks the reader's promises on success:
 * every tensor's bytes lie inside the image, the tensors tile the data buffer exactly, byte
 * sizes agree with shape x dtype, and names are unique.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	st_file f;
	char err[512];
	memset(&f, 0, sizeof f);
	f.fd = -1;
	if (st_parse_buffer(&f, data, size, err, sizeof err) < 0) {
		if (!memchr(err, '\0', sizeof err) || !err[0])
			abort(); /* an error must come with a message */
		return 0;
	}
	uint64_t pos = 0;
	for (size_t i = 0; i < f.count; i++) {
		const st_tensor *t = &f.tensors[i];
		uint64_t bytes = t->nelem * ts_dtype_size(t->dtype);
		if (t->begin != pos || t->end - t->begin != bytes)
			abort();
		if (t->data < data + f.data_start || t->data + bytes > data + size)
			abort();
		if (!t->name[0] || t->ndim < 0 || t->ndim > ST_MAX_DIMS)
			abort();
		/* touch the bytes: ASan flags any read outside the image */
		volatile uint8_t sink = 0;
		if (bytes)
			sink ^= t->data[0] ^ t->data[bytes - 1];
		(void)sink;
		if (st_find(&f, t->name) == NULL)
			abort();
		pos = t->end;
	}
	if (f.data_start + pos != size)
		abort();
	for (size_t i = 0; i < f.count; i++)
		for (size_t j = i + 1; j < f.count && j < i + 64; j++)
			if (!strcmp(f.tensors[i].name, f.tensors[j].name))
				abort();
	st_close(&f);
	return 0;
}
