#include <fcntl.h>
#include <httplib.h>
#include <unistd.h>

#include "edgelm/security/update.h"
#include "security/internal.h"

namespace edgelm::security {
namespace fs = std::filesystem;

namespace {

class HttpFetcher final : public Fetcher {
 public:
  HttpFetcher(std::string origin, std::string prefix, int timeout_seconds)
      : origin_(std::move(origin)), prefix_(std::move(prefix)), timeout_(timeout_seconds) {}

  Result<std::string> fetch(const std::string& path, uint64_t max_bytes) override {
    std::string body;
    EDGELM_CHECK(get(path, max_bytes, [&](const char* data, size_t n) {
      body.append(data, n);
      return Status{};
    }));
    return body;
  }

  Status fetch_to_file(const std::string& path, uint64_t max_bytes, const fs::path& out,
                       const std::function<void()>& on_progress) override {
    const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return detail::io_error(out, "cannot create");
    Status status = get(path, max_bytes, [&](const char* data, size_t n) -> Status {
      EDGELM_CHECK(detail::write_all(fd, {reinterpret_cast<const uint8_t*>(data), n}, out));
      if (on_progress) on_progress();
      return {};
    });
    if (status && ::fsync(fd) != 0) status = detail::io_error(out, "fsync failed");
    ::close(fd);
    return status;
  }

 private:
  // Streams the body of GET <prefix>/<path> to `sink`, stopping as soon as it exceeds max_bytes
  // (an endless or oversized response never gets further than that).
  Status get(const std::string& path, uint64_t max_bytes,
             const std::function<Status(const char*, size_t)>& sink) {
    httplib::Client client(origin_);
    client.set_connection_timeout(timeout_, 0);
    client.set_read_timeout(timeout_, 0);
    client.set_write_timeout(timeout_, 0);
    client.set_follow_location(false);
    const std::string url = prefix_ + "/" + path;
    int status = 0;
    uint64_t received = 0;
    bool too_long = false;
    std::optional<Error> sink_error;
    auto result = client.Get(
        url,
        [&](const httplib::Response& response) {
          status = response.status;
          return status == 200;
        },
        [&](const char* data, size_t n) {
          if (received + n > max_bytes) {
            too_long = true;
            return false;
          }
          received += n;
          Status s = sink(data, n);
          if (!s) {
            sink_error = s.error();
            return false;
          }
          return true;
        });
    const std::string where = "update repository file '" + path + "'";
    if (sink_error) return *sink_error;
    if (too_long) {
      return detail::security_error(where + ": longer than the " + std::to_string(max_bytes) +
                                    " bytes the metadata allows (endless data?); download stopped");
    }
    if (status == 404)
      return make_error(ErrorCode::kNotFound, where + " does not exist (HTTP 404)");
    if (status != 0 && status != 200) {
      return make_error(ErrorCode::kIo, where + ": HTTP status " + std::to_string(status));
    }
    if (!result) {
      return make_error(ErrorCode::kIo, where + ": download from " + origin_ +
                                            " failed: " + httplib::to_string(result.error()));
    }
    return {};
  }

  std::string origin_;
  std::string prefix_;
  int timeout_;
};

}  // namespace

Result<std::unique_ptr<Fetcher>> make_http_fetcher(const std::string& base_url,
                                                   int timeout_seconds) {
  const size_t scheme_end = base_url.find("://");
  const std::string scheme = scheme_end == std::string::npos ? "" : base_url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") {
    return make_error(ErrorCode::kInvalidArgument, "update repository URL '" + base_url +
                                                       "' must start with http:// or https://");
  }
  const size_t path_start = base_url.find('/', scheme_end + 3);
  std::string origin = base_url.substr(0, path_start);
  std::string prefix = path_start == std::string::npos ? "" : base_url.substr(path_start);
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  if (origin.size() <= scheme_end + 3) {
    return make_error(ErrorCode::kInvalidArgument,
                      "update repository URL '" + base_url + "' has no host");
  }
  return std::unique_ptr<Fetcher>(
      new HttpFetcher(std::move(origin), std::move(prefix), timeout_seconds));
}

}  // namespace edgelm::security
