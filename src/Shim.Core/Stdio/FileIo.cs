namespace Shim.Core.Stdio;

/// <summary>
/// file:// mode: stdout and stderr are appended to one log file through pipes the shim copies, one
/// append-mode handle per stream so each is closed at its own EOF; stdin still comes from its FIFO.
/// </summary>
internal sealed class FileIo(StdioContext context, string containerId, string ns) : ProcessIo(context, containerId, ns)
{
    private protected override void OpenStreams(StdioPaths paths, string scheme, string stdoutPath, uint ioUid, uint ioGid)
    {
        var stdin = StdinPipe(paths.Stdin, ioUid, ioGid);
        var stdout = OutputPipe(OpenLogFile(stdoutPath), ioUid, ioGid, "stdout").RuncEnd;
        var stderr = OutputPipe(OpenLogFile(stdoutPath), ioUid, ioGid, "stderr").RuncEnd;
        RuncSide = RuncFds(stdin, stdout, stderr);
    }
}
