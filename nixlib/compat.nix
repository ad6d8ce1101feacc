# What the library accepts so that workflows written for nixactions (the
# seed library) evaluate unchanged: their spellings of fields, duplicate
# step names, and providers given as derivations. docs/nix-api.md
# ("Porting from nixactions") lists what still differs.
{ util }:
let
  inherit (builtins) elemAt foldl' genList isAttrs isString length substring;
  inherit (util) fail quote;
in
rec {
  # alias returns the value of a field written either canonically or in
  # nixactions' spelling (`if` for condition, `continue-on-error` for
  # continueOnError), or null when neither is given; both is an error.
  alias = where: a: canon: other:
    let
      hasC = a ? ${canon} && a.${canon} != null;
      hasO = a ? ${other} && a.${other} != null;
    in
    if hasC && hasO then fail where "${quote canon} and ${quote other} are the same field; give one"
    else if hasC then a.${canon}
    else if hasO then a.${other}
    else null;

  aliasFields = [ "if" "continue-on-error" ];

  # uniqueStepNames gives each step of a job its name as the compiler will
  # see it (an unnamed step is step-N), renaming the second and later steps
  # of a name NAME#2, NAME#3, ... (nixactions allows several steps of one
  # name; logs need to tell them apart). It returns the names to give (null
  # for a step that keeps its own) and one warning per renamed step.
  uniqueStepNames = job: steps:
    let
      n = length steps;
      named = s: isAttrs s && s ? name && isString s.name;
      base = genList (i: let s = elemAt steps i; in if named s then s.name else "step-${toString (i + 1)}") n;
      step = acc: i:
        let
          name = elemAt base i;
          count = (acc.counts.${name} or 0) + 1;
          renamed = "${name}#${toString count}";
        in
        acc // {
          counts = acc.counts // { ${name} = count; };
          names = acc.names ++ [ (if count == 1 then null else renamed) ];
          warnings = acc.warnings ++ (if count == 1 then [ ] else [
            "job ${quote job}: step ${toString (i + 1)} is also named ${quote name}: it is called ${quote renamed} in logs and results"
          ]);
        };
    in
    foldl' step { counts = { }; names = [ ]; warnings = [ ]; } (genList (i: i) n);

  # execProvider turns an envFrom entry given as a derivation, a Nix path
  # or an absolute path string into an exec provider: a program nixflow
  # runs at run time (never at evaluation), whose `export KEY=VALUE` output
  # lines give secret variables. A derivation is built before the run like
  # a step's deps; its program is the first in its bin/. Returns null for
  # anything else (an envProviders.* value).
  execProvider = where: p:
    if util.isDerivation p then
      { type = "exec"; path = "${p}"; drv = builtins.unsafeDiscardStringContext p.drvPath; }
    else if builtins.typeOf p == "path" then
      { type = "exec"; path = toString p; }
    else if isString p then
      (if substring 0 1 p == "/" then { type = "exec"; path = p; }
       else fail where "expected a provider, a derivation or an absolute path to a program, got ${quote p}")
    else null;
}
