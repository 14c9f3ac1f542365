#include "core/log_context.h"

namespace herald::detail {

constinit thread_local LogContext current_log_context{};

}  // namespace herald::detail
