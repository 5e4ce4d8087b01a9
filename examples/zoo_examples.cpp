// Run by CMake at configure time (FORGE_BUILD_ZOO): prints one line per models::ZooExamples entry,
// "INDEX|BINARY", so the example binaries are generated from the catalog rather than listed again.
#include <cctype>
#include <cstdio>
#include <string>
#include <tuple>

#include "forge/models/catalog.hpp"

int main() {
    [&]<class... T>(std::tuple<T...>*) {
        int i = 0;
        ((std::printf("%d|forge-%s\n", i++, [] {
              std::string n(T::name.substr(0, T::name.rfind('-')));  // without the weight type
              for (char& c : n) c = char(std::tolower(static_cast<unsigned char>(c)));
              return n;
          }().c_str())),
         ...);
    }(static_cast<forge::models::ZooExamples*>(nullptr));
}
