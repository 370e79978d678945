/* SPDX-License-Identifier: MIT */
/**
 * @file trellohook.h
 * @brief The public API of libtrellohook: embed trellohook in a C program,
 *        connect functions to the `callback_received` signal and serve.
 *
 * Conventions (see docs/STYLE in the shared docs):
 *  - every exported name starts with `th_` / `TH_`;
 *  - functions return 0 on success or a negative TH_E* code and, when the
 *    caller passes a th_error, fill it with a message a person can act on;
 *  - output parameters come first and are named `out`; what you get through
 *    `**out` you free with that type's `_free` function (NULL-safe).
 */
#ifndef TRELLOHOOK_H
#define TRELLOHOOK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(TH_BUILDING)
#define TH_EXTERN __attribute__((visibility("default")))
#else
#define TH_EXTERN
#endif

/* Marks a function kept for old callers only; compilers that know the
 * attribute warn where it is used. */
#if defined(__GNUC__) && !defined(TH_BUILDING)
#define TH_DEPRECATED __attribute__((deprecated))
#else
#define TH_DEPRECATED
#endif

/** Error codes: 0 is success, each failure a negative number. */
enum th_error_code {
	TH_OK = 0,
	TH_EINVAL = -1,    /**< bad argument or malformed input */
	TH_ENOMEM = -2,    /**< out of memory */
	TH_EIO = -3,       /**< system or network I/O failed */
	TH_ENOTFOUND = -4, /**< no such object */
	TH_EEXISTS = -5,   /**< the object already exists */
	TH_ETRELLO = -6,   /**< Trello answered with an error */
	TH_ESTORE = -7,    /**< the store failed */
	TH_ECONFIG = -8,   /**< configuration is missing or malformed */
	TH_EUNAVAIL = -9,  /**< a service is unreachable; try again later */
	TH_ETOOBIG = -10,  /**< input over its size limit */
	TH_EAUTH = -11     /**< authentication failed (bad or expired token, signature) */
};

/** A caller-owned error report. `msg` is always NUL-terminated. */
typedef struct th_error {
	int code;      /**< one of enum th_error_code */
	char msg[256]; /**< what went wrong and what to do about it */
} th_error;

/** The library's version, e.g. "0.1.0". Static storage. */
TH_EXTERN const char *th_version(void);

/** An application: configuration, store, server and dispatch workers. */
typedef struct th_app th_app;

/** A stored Trello event, as handed to connected functions. Read-only;
 *  valid only during the call of the handler it is passed to. */
typedef struct th_event th_event;

/**
 * A function connected to a signal. Return 0 when the event was handled;
 * any other value makes the delivery fail and be retried later.
 * Called from a dispatch worker thread, never inside Trello's request.
 */
typedef int (*th_handler_fn)(const th_event *event, void *ctx);

/**
 * Create an application from the environment and command-line flags (the
 * variables and flags of the interface document; flags win).
 * @param out   receives the app; free it with th_app_free()
 * @param argc  number of flags in argv (may be 0)
 * @param argv  flags such as "--listen=127.0.0.1:8000" (may be NULL)
 * @param err   optional; filled on failure
 * @return 0, or TH_ECONFIG / TH_ESTORE / TH_ENOMEM
 */
TH_EXTERN int th_app_new(th_app **out, int argc, char **argv, th_error *err);

/** Free an app (stops it first if it serves). NULL-safe. */
TH_EXTERN void th_app_free(th_app *app);

/**
 * Connect @p fn to @p signal (only "callback_received" exists). Connecting
 * twice with the same @p dispatch_uid connects once (the later call is a no-op).
 * Must be called before th_app_serve(). Not thread-safe.
 * @return 0, TH_EINVAL for an unknown signal or NULL argument
 */
TH_EXTERN int th_connect(th_app *app, const char *signal, th_handler_fn fn, void *ctx,
                         const char *dispatch_uid);

/**
 * Serve: receive callbacks and run handlers until th_app_stop() is called or
 * the process receives SIGINT/SIGTERM. Blocks.
 */
TH_EXTERN int th_app_serve(th_app *app, th_error *err);

/** Ask a serving app to stop; safe from any thread and from a signal handler. */
TH_EXTERN void th_app_stop(th_app *app);

/* Event accessors. Strings are owned by the event (NULL when absent). */
TH_EXTERN const char *th_event_id(const th_event *event);          /**< our event id */
TH_EXTERN const char *th_event_webhook_id(const th_event *event);  /**< our webhook id */
TH_EXTERN const char *th_event_action_id(const th_event *event);   /**< Trello action id */
TH_EXTERN const char *th_event_action_type(const th_event *event); /**< e.g. "commentCard" */
TH_EXTERN const char *th_event_action_date(const th_event *event); /**< ISO 8601 */
TH_EXTERN const char *th_event_model_id(const th_event *event);    /**< the watched model */
TH_EXTERN const char *th_event_board_id(const th_event *event);
TH_EXTERN const char *th_event_list_id(const th_event *event);
TH_EXTERN const char *th_event_card_id(const th_event *event);
TH_EXTERN const char *th_event_member(const th_event *event); /**< who acted (full name) */
/* The names as the payload had them (NULL when it had none). For a card
 * moved between lists, the list is the one it moved to. */
TH_EXTERN const char *th_event_board_name(const th_event *event);
TH_EXTERN const char *th_event_list_name(const th_event *event);
TH_EXTERN const char *th_event_card_name(const th_event *event);
TH_EXTERN const char *th_event_member_name(const th_event *event); /**< = th_event_member() */
TH_EXTERN const char *th_event_member_id(const th_event *event);   /**< who acted (24 hex) */
TH_EXTERN const char *th_event_summary(const th_event *event);     /**< one line for people */
/** How the event reached us: "delivery" (POSTed and signed by Trello) or
 *  "backfill" (listed from Trello's actions after downtime; no signature). */
TH_EXTERN const char *th_event_source(const th_event *event);
/**
 * The event as JSON text: the body exactly as Trello sent it (the bytes whose
 * signature was verified), one JSON object in UTF-8, NUL-terminated;
 * @p len receives its size in bytes (may be NULL). Owned by the event: valid
 * while the handler runs; copy it to keep it. Parse it with the JSON library
 * of your choice (Trello's fields: `action`, `model`, `webhook`); the
 * accessors above already give the common ones.
 */
TH_EXTERN const char *th_event_payload(const th_event *event, size_t *len);
/**
 * Deprecated: use th_event_payload() and your own JSON parser. Returns the
 * payload parsed with jansson, a `json_t *` borrowed from the event (cast
 * it), which ties a handler to trellohook's copy of jansson. Kept working for
 * now; it will be removed.
 */
TH_EXTERN void *th_event_json(const th_event *event) TH_DEPRECATED;

#ifdef __cplusplus
}
#endif
#endif /* TRELLOHOOK_H */
