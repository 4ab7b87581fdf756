/*
 * Fixed byte order in buffers: every little-endian and big-endian field tstore writes or reads
 * (records, page headers and keys, meta values, codec scales) goes through these, so that the
 * layout rule is written once. Unaligned access is fine: bytes are assembled one by one.
 */
#ifndef TS_COMMON_BYTEORDER_H
#define TS_COMMON_BYTEORDER_H

#include <stdint.h>

static inline void ts__put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void ts__put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void ts__put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t ts__get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t ts__get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t ts__get_le64(const uint8_t *p)
{
	return (uint64_t)ts__get_le32(p) | (uint64_t)ts__get_le32(p + 4) << 32;
}

/* Big-endian: keys whose byte order must sort like the number (tensor ids, page indexes). */
static inline void ts__put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static inline uint64_t ts__get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

#endif
