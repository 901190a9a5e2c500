// The MariaDB Connector/C (Debian: libmariadb-dev), used only when greylag
// is built with the MariaDB trait (`swift build --traits MariaDB`).
#include <mysql.h>
