# Helpers shared by the other files of the library: error messages, type
# checks, "did you mean" suggestions, and the normalisation of the values
# that appear at several levels of a workflow (env, retry, timeout).
#
# Only long-standing builtins are used, so that the library evaluates the
# same on Nix 2.8 (Debian's nix-bin) and on current Nix and Lix.
let
  inherit (builtins) attrNames concatStringsSep elem elemAt filter foldl'
    genList isAttrs isBool isFloat isInt isList isString length match mapAttrs
    replaceStrings stringLength substring toJSON typeOf;

  # Every error of the library goes through here, so that messages share
  # one shape: `nixflow: WHERE: MESSAGE`, lowercase, user values quoted.
  fail = where: msg: throw "nixflow: ${where}: ${msg}";

  # posString writes a position of builtins.unsafeGetAttrPos as the CLI
  # reads it: FILE:LINE:COL.
  posString = p: "${p.file}:${toString p.line}:${toString p.column}";

  # libDir is the library's directory: a position in it is not the user's.
  libDir = toString ./.;
  userPos = p: p != null && substring 0 (stringLength libDir + 1) p.file != libDir + "/";

  # at prefixes where with the place of field in attrs, as Nix knows it
  # (FILE:LINE:COL: WHERE), so that a helper's error points at the user's
  # code: `fail (at o "format" "actions.sopsLoad: format") ...`. For a
  # field not given (or null), the place is that of the first attribute
  # of attrs written outside the library: the call. Nix knows no place
  # for a list's elements, nor for values not read from a file.
  at = attrs: field: where:
    let
      own = if field != null && isAttrs attrs && attrs ? ${field} then builtins.unsafeGetAttrPos field attrs else null;
      given = if isAttrs attrs then filter userPos (map (k: builtins.unsafeGetAttrPos k attrs) (attrNames attrs)) else [ ];
      earlier = a: b: if b.line < a.line || (b.line == a.line && b.column < a.column) then b else a;
      p = if userPos own then own else if given != [ ] then foldl' earlier (builtins.head given) given else null;
    in
    if p == null then where else "${posString p}: ${where}";

  # quote renders a user value in a message the way the Go CLI does (%q).
  quote = s: toJSON s;

  isDerivation = v: isAttrs v && (v.type or null) == "derivation";

  # describe names the type of a value for "expected X, got Y" messages.
  describe = v:
    let t = typeOf v; in
    if isDerivation v then "a derivation"
    else if t == "set" then "an attribute set"
    else if t == "int" then "an integer"
    else if t == "lambda" then "a function"
    else if t == "null" then "null"
    else "a ${t}";

  optionalAttrs = cond: attrs: if cond then attrs else { };

  # trim drops white space around s (for short strings: conditions).
  trim = s:
    let m = match "[[:space:]]*(((.|\n)*[^[:space:]])?)[[:space:]]*" s; in
    if m == null || builtins.head m == null then "" else builtins.head m;

  trimPrefix = p: s:
    if substring 0 (stringLength p) s == p then substring (stringLength p) (stringLength s) s else s;

  trimSuffix = x: s:
    let n = stringLength s - stringLength x; in
    if n >= 0 && substring n (stringLength x) s == x then substring 0 n s else s;

  # removeNulls drops options written as null: for every optional field of
  # the schema except retry and timeout, null means "not given".
  removeNulls = attrs: builtins.removeAttrs attrs (filter (k: attrs.${k} == null) (attrNames attrs));

  upper = [ "A" "B" "C" "D" "E" "F" "G" "H" "I" "J" "K" "L" "M" "N" "O" "P" "Q" "R" "S" "T" "U" "V" "W" "X" "Y" "Z" ];
  lower = [ "a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "k" "l" "m" "n" "o" "p" "q" "r" "s" "t" "u" "v" "w" "x" "y" "z" ];
  toLower = replaceStrings upper lower;

  chars = s: genList (i: substring i 1 s) (stringLength s);

  min = a: b: if a < b then a else b;

  # editDistance is the Damerau-Levenshtein distance (adjacent
  # transpositions count as one edit), the same measure as the Go
  # compiler's, so that Nix and the CLI suggest the same names.
  editDistance = a: b:
    let
      ca = chars a;
      cb = chars b;
      la = length ca;
      lb = length cb;
      # Row i of the distance table, built cell by cell from rows i-1 and i-2.
      nextRow = prev2: prev: i:
        foldl'
          (row: j:
            let
              cost = if elemAt ca (i - 1) == elemAt cb (j - 1) then 0 else 1;
              best = min (min (elemAt prev j + 1) (elemAt row (j - 1) + 1)) (elemAt prev (j - 1) + cost);
              transposed = i > 1 && j > 1
                && elemAt ca (i - 1) == elemAt cb (j - 2)
                && elemAt ca (i - 2) == elemAt cb (j - 1);
            in
            row ++ [ (if transposed then min best (elemAt prev2 (j - 2) + 1) else best) ])
          [ i ]
          (genList (k: k + 1) lb);
      first = genList (j: j) (lb + 1);
      rows = foldl'
        (acc: i: { prev2 = acc.prev; prev = nextRow acc.prev2 acc.prev i; })
        { prev2 = first; prev = first; }
        (genList (k: k + 1) la);
    in
    elemAt rows.prev lb;

  # suggest returns the known name closest to name when it is close enough
  # to be a likely typo, else null. Same thresholds as the Go compiler.
  suggest = name: known:
    let
      scored = map (k: { inherit k; d = editDistance (toLower name) (toLower k); }) known;
      better = a: b: if b.d < a.d || (b.d == a.d && b.k < a.k) then b else a;
      best = foldl' better (builtins.head scored) scored;
      limit3 = stringLength name / 3;
      limit = if limit3 < 1 then 1 else if limit3 > 3 then 3 else limit3;
    in
    if known == [ ] || best.d > limit || best.d >= stringLength name then null else best.k;

  didYouMean = name: known:
    let s = suggest name known; in
    if s == null then "" else " (did you mean ${quote s}?)";

  # checkFields fails on the first field of attrs that is not in known (a
  # typo must not be silently ignored, as in the JSON schema), else
  # returns result.
  checkFields = checkFieldsWith (_: _: where: where);

  # checkFieldsAt is checkFields for a helper's options (actions.*,
  # envProviders.*): the error starts with the unknown field's place (at).
  # The checks of a job's fields name the job instead, and the CLI finds
  # its place from the source map.
  checkFieldsAt = checkFieldsWith at;

  # checkFieldsWith is checkFields whose error starts with place attrs
  # FIELD where (at, or where alone).
  checkFieldsWith = place: where: known: attrs: result:
    let unknown = filter (k: !(elem k known)) (attrNames attrs); in
    if unknown == [ ] then result
    else
      let k = builtins.head unknown; in
      fail (place attrs k where) "unknown field ${quote k}${didYouMean k known}";

  # The checks below return the value (possibly converted) or fail.

  str = where: v:
    if isString v then v else fail where "expected a string, got ${describe v}";

  nonEmpty = where: v:
    let s = str where v; in
    if match "[[:space:]]*" s != null then fail where "must not be empty" else s;

  oneLine = where: v:
    let s = nonEmpty where v; in
    if match "[^\n\r]*" s == null then fail where "must be one line" else s;

  bool = where: v:
    if isBool v then v else fail where "expected true or false, got ${describe v}";

  list = where: v:
    if isList v then v else fail where "expected a list, got ${describe v}";

  attrs = where: v:
    if isAttrs v && !(isDerivation v) then v
    else fail where "expected an attribute set, got ${describe v}";

  stringList = where: v:
    let l = list where v; in
    genList (i: str "${where}[${toString i}]" (elemAt l i)) (length l);

  enum = where: allowed: v:
    let p = enumProblem allowed v; in
    if p != null then fail where p else v;

  # pathString turns a Nix path into its absolute path as a string WITHOUT
  # copying the file into the Nix store (toString does not copy, unlike
  # "${./file}"). Used for files that may hold secrets: anything copied into
  # the store is world-readable there.
  #
  # A Nix path already in the store (in a flake, ./.env means the flake's
  # copy of its source, which holds git-tracked files only, and copied a
  # file that is not tracked into the store) is refused: the file the user
  # meant is not there, or should never have been copied.
  pathString = where: v:
    if typeOf v == "path" then
      (let s = toString v; in
       if builtins.substring 0 (builtins.stringLength builtins.storeDir + 1) s == builtins.storeDir + "/"
       then fail where "${quote s} is in the Nix store (a flake's copy of its source): give the path as a string relative to the repository instead, e.g. \".env\""
       else s)
    else nonEmpty where v;

  envNamePattern = "[A-Za-z_][A-Za-z0-9_]*";

  # The *Problem functions below say what is wrong with a value (a
  # message) or return null: the checks that fail use them, and so does
  # problems.nix, which collects every mistake of a workflow at once.
  varNameProblem = v:
    if !(isString v) then "expected a string, got ${describe v}"
    else if match envNamePattern v == null
    then "invalid variable name ${quote v} (letters, digits and _, not starting with a digit)"
    else null;

  varName = where: v:
    let p = varNameProblem v; in
    if p != null then fail where p else v;

  # envValue accepts what is obviously meant as a string: integers and
  # booleans are written as the shell would see them (floats are refused:
  # Nix's JSON would round them). A Nix path becomes its
  # absolute path (not copied into the store); a derivation its output path.
  envValueProblem = v:
    if isString v || isInt v || isBool v || typeOf v == "path" || isDerivation v then null
    else if isFloat v then "a float would be rounded (Nix writes 6 significant digits): write it as a string, e.g. \"${toJSON v}\""
    else "expected a string, got ${describe v}";

  envValue = where: v:
    let p = envValueProblem v; in
    if p != null then fail where p
    else if isString v then v
    else if isInt v then toString v
    else if isBool v then (if v then "true" else "false")
    else if typeOf v == "path" then toString v
    else "${v}";

  # env checks an env attribute set (workflow, job, step, static provider).
  # The name check is tied to the value so that it runs when the JSON is
  # written, like every other check.
  env = where: v:
    mapAttrs
      (k: val: builtins.seq (varName where k) (envValue "${where}.${k}" val))
      (attrs where v);

  retryFields = [ "maxAttempts" "max_attempts" "backoff" "minTime" "min_time" "maxTime" "max_time" ];

  secondsProblem = v:
    if (isInt v || isFloat v) && v >= 0 then null
    else if isInt v || isFloat v then "must be a non-negative number of seconds, got ${toJSON v}"
    else "expected a number of seconds, got ${describe v}";

  seconds = where: v:
    let p = secondsProblem v; in
    if p != null then fail where p else v;

  enumProblem = allowed: v:
    if !(isString v) then "expected a string, got ${describe v}"
    else if elem v allowed then null
    else "unknown value ${quote v}${didYouMean v allowed} (known: ${concatStringsSep ", " allowed})";

  retrySpellings = [
    { camel = "maxAttempts"; snake = "max_attempts"; }
    { camel = "minTime"; snake = "min_time"; }
    { camel = "maxTime"; snake = "max_time"; }
  ];

  # retryProblems: every mistake of one retry layer, each as { key; sub;
  # msg; }: key is the field of the retry set it is about (null: the
  # layer itself), sub the path below the layer (".maxAttempts").
  retryProblems = v:
    if v == null then [ ]
    else if !(isAttrs v) || isDerivation v then [ { key = null; sub = ""; msg = "expected an attribute set, got ${describe v}"; } ]
    else
      let
        one = key: sub: msg: if msg == null then [ ] else [ { inherit key sub msg; } ];
        # The spelling written (camelCase first), or null.
        key = s: if v ? ${s.camel} then s.camel else if v ? ${s.snake} then s.snake else null;
        field = s: check:
          let k = key s; in if k == null then [ ] else one k ".${s.camel}" (check v.${k});
        attempts = a:
          if isInt a && a >= 1 && a <= 1000 then null
          else if isInt a then "must be between 1 and 1000, got ${toString a}"
          else "expected an integer, got ${describe a}";
      in
      builtins.concatLists (map (k: one k "" "unknown field ${quote k}${didYouMean k retryFields}")
        (filter (k: !(elem k retryFields)) (attrNames v)))
      ++ builtins.concatLists (map (s: one s.snake "" "${quote s.camel} and ${quote s.snake} are the same field; give one")
        (filter (s: v ? ${s.camel} && v ? ${s.snake}) retrySpellings))
      ++ field (builtins.elemAt retrySpellings 0) attempts
      ++ (if v ? backoff then one "backoff" ".backoff" (enumProblem [ "exponential" "linear" "constant" ] v.backoff) else [ ])
      ++ field (builtins.elemAt retrySpellings 1) secondsProblem
      ++ field (builtins.elemAt retrySpellings 2) secondsProblem;

  # retry normalises one retry layer. null stays null: it turns retry off
  # on this layer. Both spellings are accepted, camelCase is emitted.
  # minTime above maxTime is accepted, as nixactions does: the compiler
  # warns and caps the wait at maxTime.
  retry = where: v:
    let ps = retryProblems v; p = builtins.head ps; in
    if v == null then null
    else if ps != [ ] then fail "${where}${p.sub}" p.msg
    else
      let
        has = camel: snake: v ? ${camel} || v ? ${snake};
        pick = camel: snake: if v ? ${camel} then v.${camel} else v.${snake};
      in
      optionalAttrs (has "maxAttempts" "max_attempts") { maxAttempts = pick "maxAttempts" "max_attempts"; }
      // optionalAttrs (v ? backoff) { inherit (v) backoff; }
      // optionalAttrs (has "minTime" "min_time") { minTime = pick "minTime" "min_time"; }
      // optionalAttrs (has "maxTime" "max_time") { maxTime = pick "maxTime" "max_time"; };

  # A Go duration: numbers with units ns, us, µs, ms, s, m, h ("90s",
  # "1h30m", "1.5h"), spaces around it allowed.
  durationPattern = "[[:space:]]*[+]?(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+[[:space:]]*";

  numericString = "[[:space:]]*[0-9]+([.][0-9]+)?[[:space:]]*";

  timeoutProblem = durationProblem "use null for no timeout";

  # durationProblem: what is wrong with a positive duration (nullHint
  # says, when it is zero, what null does instead), or null.
  durationProblem = nullHint: v:
    if v == null then null
    else if isInt v || isFloat v then
      (if v > 0 then null else "must be greater than zero (${nullHint})")
    # "30": seconds written as a string, as nixactions reads them.
    else if isString v && match numericString v != null then
      durationProblem nullHint (builtins.fromJSON (builtins.head (match "[[:space:]]*([0-9.]+)[[:space:]]*" v)))
    else if isString v then
      (if match durationPattern v == null
       then "invalid duration ${quote v} (examples: 90, \"90s\", \"5m\", \"1h30m\")"
       else if match ".*[1-9].*" v == null
       then "must be greater than zero (${nullHint})"
       else null)
    else "expected seconds or a duration string, got ${describe v}";

  # timeout normalises a timeout: seconds (> 0) or a duration string, passed
  # through as written; null stays null (no timeout on this layer).
  timeout = duration "use null for no timeout";

  # duration is timeout with another word on what null does.
  duration = nullHint: where: v:
    let p = durationProblem nullHint v; in
    if p != null then fail where p
    else if isString v && match numericString v != null
    then builtins.fromJSON (builtins.head (match "[[:space:]]*([0-9.]+)[[:space:]]*" v))
    else v;

  # layers copies retry and timeout from a user's attribute set, keeping the
  # difference the JSON schema makes: a field the user did not write stays
  # ABSENT (the layer inherits from the outer one), while an explicit null
  # stays null (the layer turns the setting off). `?` sees a field set to
  # null as present, which is exactly the distinction needed.
  layers = where: a:
    optionalAttrs (a ? retry) { retry = retry "${where}: retry" a.retry; }
    // optionalAttrs (a ? timeout) { timeout = timeout "${where}: timeout" a.timeout; };

  # nixShellRunTime starts the script of an actions.nixShell step made
  # without pkgs, followed by the package names it resolves as nixpkgs#NAME
  # at run time; mkWorkflow warns about such steps (workflow.nix).
  nixShellRunTime = "# nixflow: nixShell without pkgs resolves at run time: ";

  # escapeShellArg quotes a string for bash, for the scripts of actions.
  escapeShellArg = s: "'${replaceStrings [ "'" ] [ "'\\''" ] s}'";
in
{
  inherit fail quote isDerivation describe optionalAttrs removeNulls toLower
    at posString editDistance suggest didYouMean checkFields checkFieldsWith checkFieldsAt str nonEmpty oneLine bool list
    attrs stringList enum pathString varName envNamePattern envValue env retry
    seconds timeout duration layers escapeShellArg varNameProblem envValueProblem
    retryProblems timeoutProblem enumProblem trim trimPrefix trimSuffix
    nixShellRunTime;
}
