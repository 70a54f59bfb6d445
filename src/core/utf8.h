/*
 * utf8.h - the one UTF-8 check: metadata, WIT strings and names in binaries must be valid
 * UTF-8, and payloads shown as text in taps must be too.
 */
#ifndef SL_CORE_UTF8_H
#define SL_CORE_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF, no truncated
 * sequence at the end. false when a byte is wrong, with the offset of the byte that
 * starts the bad sequence in *bad_at (which may be NULL). */
bool sl__utf8_valid(const void *bytes, size_t len, size_t *bad_at);

#endif
