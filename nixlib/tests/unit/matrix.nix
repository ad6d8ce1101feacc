# mkMatrixJobs: GitHub Actions' include/exclude rules (the examples of
# GitHub's documentation), job names with sorted keys, value
# stringification and sanitising. Combinations are sorted so that the
# expected JSON does not depend on the order of the cartesian product.
let
  inherit (import ../support { }) lib;
  sort = builtins.sort (a: b: builtins.toJSON a < builtins.toJSON b);
  combos = m: sort (lib.internal.combinations "test" m);
  names = args: builtins.attrNames (lib.mkMatrixJobs ({ name = "test"; jobTemplate = c: c; } // args));
in
{
  # GitHub docs, "Expanding or adding matrix configurations".
  githubIncludeFruit = combos {
    fruit = [ "apple" "pear" ];
    animal = [ "cat" "dog" ];
    include = [
      { color = "green"; }
      { color = "pink"; animal = "cat"; }
      { fruit = "apple"; shape = "circle"; }
      { fruit = "banana"; }
      { fruit = "banana"; animal = "cat"; }
    ];
  };
  # GitHub docs, "Example: Expanding configurations": extra key on one combination.
  githubIncludeNpm = combos {
    os = [ "windows-latest" "ubuntu-latest" ];
    node = [ 14 16 ];
    include = [ { os = "windows-latest"; node = 16; npm = 6; } ];
  };
  # GitHub docs, "Example: Adding configurations": no match, so a new combination.
  githubIncludeNew = combos {
    os = [ "windows-latest" "ubuntu-latest" ];
    version = [ 10 12 14 ];
    include = [ { os = "windows-latest"; version = 17; } ];
  };
  # GitHub docs: a matrix of only include entries.
  githubIncludeOnly = combos {
    include = [
      { site = "production"; datacenter = "site-a"; }
      { site = "staging"; datacenter = "site-b"; }
    ];
  };
  # GitHub docs, "Excluding matrix configurations": full and partial matches.
  githubExclude = combos {
    os = [ "macos-latest" "windows-latest" ];
    version = [ 12 14 16 ];
    environment = [ "staging" "production" ];
    exclude = [
      { os = "macos-latest"; version = 12; environment = "production"; }
      { os = "windows-latest"; version = 16; }
    ];
  };
  # exclude comes first: an include can bring back an excluded combination,
  # as a new one.
  excludeThenInclude = combos {
    os = [ "linux" "darwin" ];
    exclude = [ { os = "darwin"; } ];
    include = [ { os = "darwin"; experimental = true; } ];
  };
  # A later include overwrites an extra key added by an earlier one, never
  # an original value (no match, so it is added instead).
  includeOverwrites = combos {
    os = [ "linux" ];
    include = [ { flag = "a"; } { flag = "b"; } { os = "mac"; flag = "c"; } ];
  };
  # Values are compared as strings: 20 matches "20".
  compareAsStrings = combos {
    node = [ 18 20 ];
    exclude = [ { node = "18"; } ];
  };

  namesSorted = names { matrix = { os = [ "linux" ]; arch = [ "x86_64" "aarch64" ]; }; };
  namesStringified = names { matrix = { n = [ 1 "2.5" ]; flag = [ true false ]; s = [ "a b/c" "ü" ]; }; };
  namesWithExtras = names { matrix = { os = [ "linux" ]; include = [ { experimental = true; } ]; }; };
  namePrefixSanitised = names { name = "unit tests"; matrix = { os = [ "linux" ]; }; };
  # jobTemplate gets the values as written, not their strings.
  templateArgument = lib.mkMatrixJobs {
    name = "t";
    matrix = { node = [ 20 ]; flag = [ true ]; };
    jobTemplate = c: { inherit (c) node flag; };
  };
}
