/* client.c — placeholder until implemented. */
typedef int client_placeholder_;
