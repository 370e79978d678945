/* admin.c — the web admin (pages arrive with the admin issue). */
#include "server/server.h"

int server_admin(app *a, http_request *req, http_response *res, const char *rest)
{
	http_response_text(res, 404, "the admin is not available in this build yet\n");
	return HTTP_DONE;
}
