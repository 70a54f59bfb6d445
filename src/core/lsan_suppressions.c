/*
 * lsan_suppressions.c - the one place where Sluice tells LeakSanitizer what is not a leak.
 * The sanitizer runtime calls this hook in -fsanitize=address/leak builds (`make asan`);
 * other builds never call it.
 *
 * h2o_mem_alloc_recycle: libh2o keeps socket buffers, HTTP/2 write buffers and request-
 * pool chunks on per-thread free lists that it never empties. When a pipeline stops and
 * its worker threads exit, what those lists held becomes unreachable although the http
 * source released every connection, request and context it had. Only memory that went
 * through that allocator is exempt: a connection h2o never closed is still reported.
 */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:h2o_mem_alloc_recycle\n"; }
