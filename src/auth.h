/*
 * auth.h: the Authorization header line, made once per pool. libcurl's own
 * credentials (CURLOPT_USERNAME/PASSWORD, CURLOPT_XOAUTH2_BEARER) rebuild
 * the line on every request, base64 and formatting included; a ready line in
 * the header list costs libcurl one copy.
 */
#ifndef ENVOKE_AUTH_H
#define ENVOKE_AUTH_H

/* Sets *line to "Authorization: Basic base64(user:password)" when user is not
 * NULL, else to "Authorization: Bearer token" when token is not NULL, else to
 * NULL; -1 when out of memory. The caller frees the line. */
int ek_auth_line(const char *user, const char *password, const char *token, char **line);

#endif
