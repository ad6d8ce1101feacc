# compiler/testdata/conditions.txtar written with the library: status
# functions, bash conditions with any quoting, and the `actions` spelling
# of a job's steps (the seed library's name for them).
let
  inherit (import ./support { }) lib;
  true' = { bash = "true"; };
in
(lib.mkWorkflow {
  name = "conditions";
  jobs = {
    a = { steps = [ true' ]; };
    b = { needs = [ "a" ]; condition = "failure()"; steps = [ true' ]; };
    c = { needs = [ "a" ]; condition = "always()"; steps = [ true' ]; };
    d = { needs = [ "a" ]; condition = "cancelled()"; actions = [ true' ]; };
    e = { needs = [ "a" ]; condition = "[ \"$BRANCH\" = 'main' ] || echo \"x|y\" | grep -q 'x|y'"; steps = [ true' ]; };
    f = { needs = [ "a" ]; condition = ''always() && test -f "a b"''; steps = [ true' ]; };
    g = {
      needs = [ "b" "c" "d" "e" "f" ];
      steps = [
        { name = "s1"; bash = "true"; condition = "  success()  "; }
        { name = "s2"; bash = "true"; condition = ''failure() && [ -n "$X" ]''; continueOnError = true; }
      ];
    };
  };
}).plan
