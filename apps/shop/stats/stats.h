// shop/stats — read models of user and order figures, in documents "stats"/"users" and
// "stats"/"orders", each change applied exactly once (HandlerContext::exactly_once).
#pragma once

#include <memory>

#include "herald/system.h"

namespace shop::stats {

inline constexpr std::string_view kStatsCollection = "stats";

std::shared_ptr<herald::EventHandler> make_user_stats_handler();   // "stats.update_user_stats"
std::shared_ptr<herald::EventHandler> make_order_stats_handler();  // "stats.update_order_stats"

std::unique_ptr<herald::Module> make_module();

}  // namespace shop::stats
