namespace Shim.E2E.Tests;

/// <summary>
/// Holds a <c>runc exec</c> open at the test's word, as containerd's <c>runc-fp</c> failpoint
/// <c>delayExec</c> does in its integration tests (with <c>pkg/fifosync</c>): the
/// <see cref="RuncWrapper"/> runs <see cref="Snippet"/>, which finds <c>RCS_HOLD=&lt;folder&gt;</c>
/// in the environment of the exec's process spec, opens <c>ready</c> there for writing (the test,
/// reading it, learns that runc exec has been entered: the shim is inside Start), then blocks
/// reading <c>go</c> until the test writes to it, and only then runs the real runc. No sleeps:
/// every step waits on a FIFO open or read.
/// </summary>
internal sealed class ExecHold
{
    /// <summary>The environment variable in the exec's process spec that names the hold's folder.</summary>
    public const string EnvName = "RCS_HOLD";

    /// <summary>
    /// The wrapper's snippet: for <c>runc exec</c> only, and only for a spec that carries
    /// <see cref="EnvName"/>. Both shims pass the spec as <c>--process &lt;file&gt;</c>, one line of JSON.
    /// </summary>
    public const string Snippet = $$"""
        if [ "$verb" = exec ]; then
          {{RuncWrapper.FindProcessSpec}}
          hold=$(sed -n 's/.*"{{EnvName}}=\([^"]*\)".*/\1/p' "$spec")
          if [ -n "$hold" ]; then
            echo "held $hold" >> "$dir/record"
            echo entered > "$hold/ready"
            read _ < "$hold/go"
            echo "released $hold" >> "$dir/record"
          fi
        fi
        """;

    private readonly List<FileStream> _propped = [];

    private ExecHold(string dir) => Dir = dir;

    /// <summary>The folder holding the <c>ready</c> and <c>go</c> FIFOs.</summary>
    public string Dir { get; }

    /// <summary>The <c>NAME=value</c> to put into the exec's environment.</summary>
    public string Env => $"{EnvName}={Dir}";

    private string Ready => Path.Combine(Dir, "ready");
    private string Go => Path.Combine(Dir, "go");

    /// <summary>Makes the two FIFOs in <paramref name="dir"/> (an empty folder the test removes).</summary>
    public static async Task<ExecHold> CreateAsync(string dir, CancellationToken ct)
    {
        var hold = new ExecHold(dir);
        (await Command.RunAsync("mkfifo", [hold.Ready, hold.Go], ct: ct)).EnsureSuccess();
        return hold;
    }

    /// <summary>
    /// Completes once a runc exec of this hold has been entered (the wrapper wrote <c>ready</c>).
    /// The open blocks a thread until the wrapper opens its end; <see cref="Prop"/> frees it if that never comes.
    /// </summary>
    public Task EnteredAsync() => Task.Factory.StartNew(() =>
    {
        using var ready = new FileStream(Ready, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 0);
        using var reader = new StreamReader(ready);
        reader.ReadToEnd();
    }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    /// <summary>Lets the held runc exec go on: opens <c>go</c> for writing (as soon as the wrapper reads it) and writes a line.</summary>
    public async Task ReleaseAsync(TimeSpan timeout, CancellationToken ct)
    {
        var write = Task.Factory.StartNew(() =>
        {
            using var go = new FileStream(Go, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, bufferSize: 0);
            go.Write("go\n"u8);
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        await write.WaitAsync(timeout, ct);
    }

    /// <summary>
    /// Cleanup, run before the daemon is torn down: both FIFOs opened read-write and kept open, with
    /// <c>go</c> lines waiting in the pipe, so no runc exec of this hold blocks again (and no blocked
    /// open of the test's either). <see cref="Unprop"/> closes them once the daemon is gone.
    /// </summary>
    public void Prop()
    {
        try
        {
            _propped.Add(new FileStream(Ready, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, bufferSize: 0));
            var go = new FileStream(Go, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, bufferSize: 0);
            _propped.Add(go);
            for (int i = 0; i < 16; i++) { go.Write("go\n"u8); }
        }
        catch (IOException e) { TestContext.Current.TestOutputHelper?.WriteLine($"cleanup: could not prop {Dir} open: {e.Message}"); }
    }

    /// <summary>Closes what <see cref="Prop"/> opened.</summary>
    public void Unprop()
    {
        foreach (var fs in _propped) { fs.Dispose(); }
        _propped.Clear();
    }
}
