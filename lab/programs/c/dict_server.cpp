// English->Chinese dictionary server over TCP (default port 8080), one thread per client.
//
//   dict_server [PORT] [--backlog N] [--reuseaddr] [--host ADDR]
//
// Protocol: UTF-8 lines.  Each request line is one word; the reply is one line: the word's
// translation, or the word itself when it is unknown (or not valid UTF-8).  Lookup tries
// the word as given, then in ASCII lower case.  Lines are framed by "\n" whatever the
// segments: two words in one segment get two replies, a word split over two segments one.
//
// The words are read at start from dictionary.tsv (word<TAB>translation, the Python
// server's file), looked for beside the executable, then in its parent folder (so a binary
// built in lab/programs/c/ finds lab/programs/dictionary.tsv).
#include "serve.h"
#include "wrap.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <unistd.h>
#include <unordered_map>
#include <vector>

namespace {

constexpr int DEFAULT_PORT = 8080;

std::unordered_map<std::string, std::string> dict;

struct Conn {
    int fd;
    sockaddr_in peer;
    unsigned long number;
};

std::string trim(const std::string &s)
{
    const char *space = " \t\r\n\v\f";
    size_t first = s.find_first_not_of(space);
    if (first == std::string::npos)
        return "";
    return s.substr(first, s.find_last_not_of(space) - first + 1);
}

// Well-formed UTF-8 as Python's decode() sees it: no overlong forms, no surrogates,
// nothing above U+10FFFF.
bool valid_utf8(const std::string &s)
{
    size_t i = 0;
    while (i < s.size()) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        size_t extra;
        unsigned long cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            extra = 1, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            extra = 2, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            extra = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (extra >= s.size() - i)
            return false;
        for (size_t k = 1; k <= extra; k++) {
            unsigned char next = static_cast<unsigned char>(s[i + k]);
            if ((next & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (next & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += extra + 1;
    }
    return true;
}

std::string executable_dir(const char *argv0)
{
    std::vector<char> path(4096);
    ssize_t n = readlink("/proc/self/exe", path.data(), path.size() - 1);
    std::string exe = n > 0 ? std::string(path.data(), static_cast<size_t>(n)) : argv0;
    size_t slash = exe.rfind('/');
    return slash == std::string::npos ? "." : exe.substr(0, slash);
}

// Loads the word list; exits 1 with a located message if it is missing or malformed.
void load_dictionary(const char *argv0)
{
    std::string dir = executable_dir(argv0);
    std::string tried[] = {dir + "/dictionary.tsv", dir + "/../dictionary.tsv"};
    for (const std::string &path : tried) {
        std::ifstream in(path);
        if (!in)
            continue;
        std::string raw;
        for (int number = 1; std::getline(in, raw); number++) {
            if (trim(raw).empty() || raw[0] == '#')
                continue;
            size_t tab = raw.find('\t');
            std::string word = tab == std::string::npos ? "" : trim(raw.substr(0, tab));
            std::string translation = tab == std::string::npos ? "" : trim(raw.substr(tab + 1));
            if (word.empty() || translation.empty()) {
                log_line("%s:%d: expected word<TAB>translation", path.c_str(), number);
                std::exit(1);
            }
            dict[word] = translation;
        }
        log_line("dictionary %s words=%zu", path.c_str(), dict.size());
        return;
    }
    log_line("dict_server: no dictionary.tsv in %s or its parent folder", dir.c_str());
    std::exit(1);
}

// The request line without its line ending and surrounding blanks, as the lookup key.
std::string request_word(const char *line, size_t len)
{
    std::string raw(line, len);
    while (!raw.empty() && (raw.back() == '\n' || raw.back() == '\r'))
        raw.pop_back();
    return valid_utf8(raw) ? trim(raw) : raw;
}

std::string translate(const std::string &key)
{
    auto it = dict.find(key);
    if (it == dict.end()) {
        std::string lower = key;
        for (char &c : lower)
            if (c >= 'A' && c <= 'Z')
                c = static_cast<char>(c - 'A' + 'a');
        it = dict.find(lower);
    }
    return it != dict.end() ? it->second : key;
}

void handle(std::unique_ptr<Conn> conn)
{
    char where[ADDR_TEXT_LEN];
    addr_text(&conn->peer, where, sizeof where);
    std::string who = "thread=Thread-" + std::to_string(conn->number);
    log_line("connect %s %s", where, who.c_str());
    auto reader = std::make_unique<line_reader>();
    line_reader_init(reader.get(), conn->fd);
    std::vector<char> buffer(MAX_LINE + 2);
    size_t bytes_out = 0;
    const char *reason = "";
    for (;;) {
        ssize_t size = readline(reader.get(), buffer.data(), buffer.size());
        if (size > 0) {
            std::string key = request_word(buffer.data(), static_cast<size_t>(size));
            std::string value = translate(key) + "\n";
            if (writen(conn->fd, value.data(), value.size()) < 0) {
                reason = " reset";
                break;
            }
            bytes_out += value.size();
        } else if (size == 0) {
            break;
        } else if (size == -2) {
            std::string refusal = "ERROR line longer than " + std::to_string(MAX_LINE) +
                                  " bytes; closing\n";
            if (writen(conn->fd, refusal.data(), refusal.size()) > 0)
                bytes_out += refusal.size();
            reason = " line-too-long";
            break;
        } else {
            reason = errno == ECONNRESET ? " reset" : " error";
            break;
        }
    }
    close(conn->fd);
    log_line("close %s %s bytes_in=%zu bytes_out=%zu%s", where, who.c_str(), reader->received,
             bytes_out, reason);
}

}  // namespace

int main(int argc, char **argv)
{
    server_args args;
    parse_server_args(argc, argv, DEFAULT_PORT, &args);
    load_dictionary(argc > 0 ? argv[0] : "dict_server");
    sigset_t waiting;
    block_stop_signals(&waiting);  // before any thread: they all inherit the block
    int listenfd = open_socket(&args, "tcp");
    set_nonblocking(listenfd);
    unsigned long count = 0;
    while (wait_readable(listenfd, &waiting)) {
        auto conn = std::make_unique<Conn>();
        socklen_t peer_len = sizeof conn->peer;
        conn->fd = Accept(listenfd, &conn->peer, &peer_len);
        if (conn->fd < 0)
            continue;
        conn->number = ++count;
        int fd = conn->fd;
        try {
            std::thread(handle, std::move(conn)).detach();
        } catch (const std::system_error &err) {
            log_line("error thread: %s", err.what());
            Close(fd);
        }
    }
    Close(listenfd);
    log_shutdown();
    return 0;
}
