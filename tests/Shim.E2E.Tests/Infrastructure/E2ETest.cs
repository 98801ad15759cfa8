namespace Shim.E2E.Tests;

/// <summary>
/// Base of every end-to-end test: checks prerequisites (skip on a workstation, fail under CI),
/// starts a private containerd per test with its own namespace, and tears everything down
/// afterwards, dumping the daemon log tail into the test output when the test failed.
/// </summary>
public abstract class E2ETest : IAsyncLifetime
{
    private PrivateContainerd? _ctrd;
    private readonly List<string> _dirs = [];

    /// <summary>The private daemon of this test.</summary>
    internal PrivateContainerd Ctrd => _ctrd ?? throw new InvalidOperationException("containerd not started");

    /// <summary>What every test's containerd namespace starts with.</summary>
    internal const string NamespacePrefix = "rcs-e2e-";

    /// <summary>A namespace no other test (and no other daemon) uses.</summary>
    protected string Ns { get; } = NamespacePrefix + Guid.NewGuid().ToString("N")[..10];

    /// <summary>The runtime under test (ours unless RCS_E2E_RUNTIME says otherwise).</summary>
    protected static string Runtime => Prereqs.Runtime;

    /// <summary>The shared busybox rootfs.</summary>
    protected string RootfsDir { get; private set; } = "";

    /// <summary>True for tests that need the daemon's CRI plugin.</summary>
    private protected virtual bool WithCri => false;

    /// <summary>How this test's daemon is started (read once, before it starts).</summary>
    private protected virtual ContainerdOptions DaemonOptions => new(Cri: WithCri);

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    protected static void Log(string line) => TestContext.Current.TestOutputHelper?.WriteLine(line);

    public async ValueTask InitializeAsync()
    {
        Prereqs.RequireOrSkip();
        RootfsDir = await Rootfs.GetAsync();
        _ctrd = await PrivateContainerd.StartAsync(DaemonOptions, Ct);
        Log($"{_ctrd.Line} pid {_ctrd.Pid} in {_ctrd.Dir}{(WithCri ? " with CRI" : "")}, namespace {Ns}, runtime {Runtime}");
    }

    public async ValueTask DisposeAsync()
    {
        if (_ctrd is null) { return; }
        if (TestContext.Current.TestState?.Result is TestResult.Failed)
        {
            Log($"--- tail of {_ctrd.LogPath} ---\n{_ctrd.LogTail(60)}\n--- end of containerd log ---");
        }
        await _ctrd.DisposeAsync();
        foreach (var dir in _dirs)
        {
            try { Directory.Delete(dir, recursive: true); }
            catch (DirectoryNotFoundException) { }
            catch (IOException e) { Log($"cleanup: could not remove {dir}: {e.Message}"); }
        }
        GC.SuppressFinalize(this);
    }

    /// <summary>A new temporary folder, removed with everything in it once the daemon is down.</summary>
    protected string TempDir(string prefix)
    {
        var dir = Directory.CreateTempSubdirectory(prefix).FullName;
        _dirs.Add(dir);
        return dir;
    }

    /// <summary>Removes <paramref name="dir"/> with everything in it once the daemon is down.</summary>
    protected void RemoveAfterwards(string dir) => _dirs.Add(dir);

    /// <summary>Skips a check of behaviour the stock Go shim does not have (when the suite targets it).</summary>
    protected static void OursOnly(string why)
    {
        if (Runtime != "io.containerd.runcsharp.v2")
        {
            Assert.Skip($"{Runtime} does not do this ({why})");
        }
    }

    /// <summary>ctr in this test's namespace.</summary>
    internal Task<CommandResult> CtrAsync(params string[] args) => Ctrd.CtrAsync(Ns, args, ct: Ct);

    /// <summary>ctr with stdin bytes and a timeout.</summary>
    internal Task<CommandResult> CtrAsync(IEnumerable<string> args, byte[]? stdin, TimeSpan? timeout = null) =>
        Ctrd.CtrAsync(Ns, args, stdin, timeout, Ct);

    /// <summary>ctr in this test's namespace, left running for the test to read its stdout (dispose it).</summary>
    internal RunningCommand StartCtr(IEnumerable<string> args) => Ctrd.StartCtr(Ns, args);

    /// <summary>
    /// Arguments of <c>ctr run</c> through the runtime under test on the busybox rootfs
    /// (<c>--rootfs</c> is a flag in ctr 1.6; the rootfs dir is the first positional argument).
    /// </summary>
    internal string[] RunArgs(string id, bool detach, params string[] command) =>
    [
        "run", detach ? "-d" : "--rm", "--fifo-dir", Ctrd.FifoDir, "--runtime", Runtime,
        "--rootfs", "--env", "PATH=/bin", RootfsDir, id, .. command,
    ];

    /// <summary><see cref="RunArgs"/> through <paramref name="runtime"/> (a <see cref="WrappedShim"/>) instead of the runtime under test.</summary>
    internal string[] RunThrough(string runtime, string id, bool detach, params string[] command)
    {
        var args = RunArgs(id, detach, command);
        args[Array.IndexOf(args, "--runtime") + 1] = runtime;
        return args;
    }

    /// <summary><c>ctr run</c> arguments with the annotation that puts the container into a shim group (as CRI groups a pod).</summary>
    internal static string[] Grouped(string[] runArgs, string group) =>
        [runArgs[0], runArgs[1], "--annotation", $"io.kubernetes.cri.sandbox-id={group}", .. runArgs[2..]];

    /// <summary><c>ctr run --rm</c>, waiting for the container to finish.</summary>
    internal Task<CommandResult> RunAsync(string id, params string[] command) =>
        Ctrd.CtrAsync(Ns, RunArgs(id, detach: false, command), ct: Ct);
}
