# Runs neoppod's neoctl many times in one Python process, to save the
# interpreter start and imports (most of the time of one neoctl run).
#
# Reads one JSON array of arguments per line on stdin; writes one JSON
# object per line on stdout: {"stdout": ..., "stderr": ..., "code": N},
# what a separate `neoctl ARGS...` process would have printed and exited
# with (SystemExit handled as the interpreter does, other exceptions print
# a traceback and give 1).
import gc, io, json, sys, traceback
from neo.scripts.neoctl import main
sys.argv[0] = "neoctl"

out = sys.stdout
for line in sys.stdin:
    args = json.loads(line)
    o, e = io.StringIO(), io.StringIO()
    sys.stdout, sys.stderr = o, e
    code = 0
    try:
        main(args)
    except SystemExit as x:
        if x.code is None:
            code = 0
        elif isinstance(x.code, int):
            code = x.code
        else:
            print(x.code, file=e)
            code = 1
    except BaseException:
        traceback.print_exc(file=e)
        code = 1
    finally:
        sys.stdout, sys.stderr = out, sys.__stderr__
    gc.collect()  # close the admin connection of this run
    out.write(json.dumps({"stdout": o.getvalue(), "stderr": e.getvalue(), "code": code}) + "\n")
    out.flush()
