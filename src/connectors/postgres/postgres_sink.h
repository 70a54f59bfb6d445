/*
 * postgres_sink.h - the settings the `postgres` sink reads (filled from the table in
 * postgres_sink.c), kept apart so tests could fill the struct by hand.
 */
#ifndef SL_CONNECTORS_POSTGRES_SINK_H
#define SL_CONNECTORS_POSTGRES_SINK_H

#include <stdbool.h>
#include <stdint.h>

#include "sluice/connector.h"

typedef struct postgres_sink_config {
  char *url;                /* libpq URI or key=value conninfo */
  char *username;           /* NULL: the URL's (or libpq's default) */
  char *password;           /* NULL: the URL's, PGPASSWORD or ~/.pgpass */
  char *table;              /* "name" or "schema.name", case-sensitive */
  sl_conf_map columns;      /* column -> source (pg_rows.h) */
  sl_conf_list on_conflict; /* columns of a unique key; none: plain COPY */
  char *sslmode;            /* NULL: the URL's, else libpq's "prefer" */
  bool tls;                 /* true: sslmode verify-full unless sslmode says otherwise */
  char *tls_ca;             /* sslrootcert */
  char *tls_cert;           /* sslcert */
  char *tls_key;            /* sslkey */
  uint64_t connect_timeout; /* ms to connect and log in */
  uint64_t timeout;         /* ms for each step of a batch's statements */
  uint64_t backoff;         /* ms before the first retry; doubles */
  uint64_t max_backoff;     /* ms, the cap */
} postgres_sink_config;

extern const sl_connector sl_postgres_sink;

#endif
