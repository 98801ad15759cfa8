using System.Text;
using Shim.Core.Stdio;
using Shim.Os.Terminals;

namespace Shim.Core.Tests.Stdio;

/// <summary>file:// mode: both output streams appended to one log file.</summary>
public sealed class FileIoTests : IDisposable
{
    private readonly StdioTestFiles _files = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Stdout_and_stderr_are_appended_to_the_log_file_creating_its_directory()
    {
        string log = Path.Combine(_files.Dir, "logs", "c1.log");
        var uri = new Uri(log).AbsoluteUri;   // file:///...
        using var io = ProcessIo.Open(TestStdio.Context, new StdioPaths("", uri, uri, Terminal: false), 0, 0);
        var stdout = StdioTestFiles.ProcessEnd(io.RuncSide.Stdout!, FileAccess.Write);
        var stderr = StdioTestFiles.ProcessEnd(io.RuncSide.Stderr!, FileAccess.Write);
        io.Start();
        await using (stdout)
        {
            await stdout.WriteAsync("out\n"u8.ToArray(), Ct);
        }
        await using (stderr)
        {
            await stderr.WriteAsync("err\n"u8.ToArray(), Ct);
        }

        Assert.True(await io.WaitOutputAsync(TimeSpan.FromSeconds(10)));
        var lines = await File.ReadAllLinesAsync(log, Encoding.UTF8, Ct);
        Assert.Equal(["err", "out"], lines.Order(StringComparer.Ordinal));
        Assert.False(io.HoldsUnreadOutput());   // a file is never unread
    }

    [Fact]
    public void An_unknown_scheme_is_an_invalid_argument_naming_it()
    {
        var ex = Assert.Throws<Shim.Core.Errors.ShimException>(() =>
            ProcessIo.Open(TestStdio.Context, new StdioPaths("", "tcp://host/x", "", Terminal: false), 0, 0));
        Assert.Equal(Shim.Core.Errors.ErrorKind.InvalidArgument, ex.Kind);
        Assert.Contains("tcp://", ex.Message, StringComparison.Ordinal);
    }

    public void Dispose() => _files.Dispose();
}
