// The control plane inside the served process: the request handler (shared by the socket
// and hotbackup_request()) and the socket server thread.
#pragma once
#include <string>

namespace hb {

std::string handle_request(const std::string &line);
void start_control_socket();
void stop_control_socket();

}  // namespace hb
