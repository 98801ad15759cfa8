namespace Shim.Core.Stdio;

/// <summary>
/// binary:// and binary-v2:// mode: runc writes straight into the pipes of a logging binary the
/// shim starts (<see cref="BinaryLogger"/>), so the shim copies no output; stdin still comes from its FIFO.
/// </summary>
internal sealed class LoggerIo(StdioContext context, string containerId, string ns) : ProcessIo(context, containerId, ns)
{
    private BinaryLogger? _logger;

    private protected override void OpenStreams(StdioPaths paths, string scheme, string stdoutPath, uint ioUid, uint ioGid)
    {
        var stdin = StdinPipe(paths.Stdin, ioUid, ioGid);
        _logger = StartLogger(paths.Stdout);
        var stdout = RuncEnd(_logger.Stdout, ioUid, ioGid);
        var stderr = RuncEnd(_logger.Stderr, ioUid, ioGid);
        RuncSide = RuncFds(stdin, stdout, stderr);
    }

    private protected override Task ReadyAsync(CancellationToken ct) => _logger?.WaitReadyAsync(Context.Loop, ct) ?? Task.CompletedTask;

    private protected override void ReleaseMode()
    {
        _logger?.Stop();
        _logger = null;
    }
}
