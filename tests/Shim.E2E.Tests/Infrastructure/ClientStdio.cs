namespace Shim.E2E.Tests;

/// <summary>
/// The stdio FIFOs of one exec, made and opened by the test the way containerd's client (<c>cio</c>)
/// does: it makes them with mkfifo (no stderr for a terminal: the console is both streams), and
/// opens its ends without waiting for the shim (the open completes once the shim opened the other
/// end). Here each open blocks a thread of its own; <see cref="Prop"/> frees any still blocked when
/// the test is over. (containerd 1.6's shim fails a start whose stderr is "" without a terminal.)
/// </summary>
internal sealed class ClientStdio
{
    private readonly Task<FileStream> _stdinOpen;
    private readonly Task<byte[]> _stdout;
    private readonly Task<byte[]>? _stderr;
    private readonly List<FileStream> _propped = [];

    private ClientStdio(string stdin, string stdout, string stderr)
    {
        Stdin = stdin;
        Stdout = stdout;
        Stderr = stderr;
        _stdinOpen = Task.Factory.StartNew(
            () => new FileStream(stdin, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, bufferSize: 0),
            CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        _stdout = ReadAll(stdout);
        _stderr = stderr.Length > 0 ? ReadAll(stderr) : null;
    }

    private static Task<byte[]> ReadAll(string fifo) => Task.Factory.StartNew(() =>
    {
        using var fs = new FileStream(fifo, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 0);
        using var all = new MemoryStream();
        fs.CopyTo(all);
        return all.ToArray();
    }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    /// <summary>Path of the stdin FIFO (the request's <c>stdin</c>).</summary>
    public string Stdin { get; }

    /// <summary>Path of the stdout FIFO (the request's <c>stdout</c>).</summary>
    public string Stdout { get; }

    /// <summary>Path of the stderr FIFO (the request's <c>stderr</c>), "" for a terminal.</summary>
    public string Stderr { get; }

    /// <summary>Makes the FIFOs in <paramref name="dir"/> and starts opening the client's ends.</summary>
    public static async Task<ClientStdio> CreateAsync(string dir, bool terminal, CancellationToken ct)
    {
        string stdin = Path.Combine(dir, "stdin"), stdout = Path.Combine(dir, "stdout"), stderr = terminal ? "" : Path.Combine(dir, "stderr");
        (await Command.RunAsync("mkfifo", terminal ? [stdin, stdout] : [stdin, stdout, stderr], ct: ct)).EnsureSuccess();
        return new ClientStdio(stdin, stdout, stderr);
    }

    /// <summary>
    /// Writes <paramref name="input"/> into stdin once the shim has opened the FIFO's read end, then
    /// closes the client's writer (what cio does when its stdin stream ends).
    /// </summary>
    public async Task WriteAndCloseAsync(byte[] input, TimeSpan timeout, CancellationToken ct)
    {
        var writer = await _stdinOpen.WaitAsync(timeout, ct);
        await using (writer)
        {
            await writer.WriteAsync(input, ct);
        }
    }

    /// <summary>All the exec wrote to stdout, once every writer of the FIFO has closed it.</summary>
    public async Task<string> ReadAllAsync(TimeSpan timeout, CancellationToken ct) =>
        System.Text.Encoding.UTF8.GetString(await _stdout.WaitAsync(timeout, ct));

    /// <summary>All the exec wrote to stderr ("" for a terminal).</summary>
    public async Task<string> ReadStderrAsync(TimeSpan timeout, CancellationToken ct) =>
        _stderr is null ? "" : System.Text.Encoding.UTF8.GetString(await _stderr.WaitAsync(timeout, ct));

    /// <summary>
    /// Cleanup, before the daemon is torn down: both FIFOs opened read-write and kept open, so no open
    /// of the test's is left blocked; <see cref="Unprop"/> closes them (and the writer) afterwards.
    /// </summary>
    public void Prop()
    {
        foreach (var fifo in new[] { Stdin, Stdout, Stderr }.Where(f => f.Length > 0))
        {
            try { _propped.Add(new FileStream(fifo, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, bufferSize: 0)); }
            catch (IOException e) { TestContext.Current.TestOutputHelper?.WriteLine($"cleanup: could not prop {fifo} open: {e.Message}"); }
        }
    }

    /// <summary>Closes what <see cref="Prop"/> opened, and the client's stdin writer if it was never closed.</summary>
    public void Unprop()
    {
        foreach (var fs in _propped) { fs.Dispose(); }
        _propped.Clear();
        if (_stdinOpen.IsCompletedSuccessfully) { _stdinOpen.Result.Dispose(); }
    }
}
