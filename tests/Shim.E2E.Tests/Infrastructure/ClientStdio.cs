namespace Shim.E2E.Tests;

/// <summary>
/// The stdin and stdout FIFOs of one exec, made and opened by the test the way containerd's client
/// (<c>cio</c>) does: it makes them with mkfifo, and opens its ends without waiting for the shim
/// (the open completes once the shim opened the other end). Here each open blocks a thread of its
/// own; <see cref="Prop"/> frees any still blocked when the test is over.
/// </summary>
internal sealed class ClientStdio
{
    private readonly Task<FileStream> _stdinOpen;
    private readonly Task<byte[]> _stdout;
    private readonly List<FileStream> _propped = [];

    private ClientStdio(string stdin, string stdout)
    {
        Stdin = stdin;
        Stdout = stdout;
        _stdinOpen = Task.Factory.StartNew(
            () => new FileStream(stdin, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, bufferSize: 0),
            CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        _stdout = Task.Factory.StartNew(() =>
        {
            using var fs = new FileStream(stdout, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 0);
            using var all = new MemoryStream();
            fs.CopyTo(all);
            return all.ToArray();
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    /// <summary>Path of the stdin FIFO (the request's <c>stdin</c>).</summary>
    public string Stdin { get; }

    /// <summary>Path of the stdout FIFO (the request's <c>stdout</c>).</summary>
    public string Stdout { get; }

    /// <summary>Makes both FIFOs in <paramref name="dir"/> and starts opening the client's ends.</summary>
    public static async Task<ClientStdio> CreateAsync(string dir, CancellationToken ct)
    {
        string stdin = Path.Combine(dir, "stdin"), stdout = Path.Combine(dir, "stdout");
        (await Command.RunAsync("mkfifo", [stdin, stdout], ct: ct)).EnsureSuccess();
        return new ClientStdio(stdin, stdout);
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

    /// <summary>
    /// Cleanup, before the daemon is torn down: both FIFOs opened read-write and kept open, so no open
    /// of the test's is left blocked; <see cref="Unprop"/> closes them (and the writer) afterwards.
    /// </summary>
    public void Prop()
    {
        foreach (var fifo in new[] { Stdin, Stdout })
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
