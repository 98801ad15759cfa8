using Shim.Os.Tests.Support;
using Shim.Os.Io;

namespace Shim.Os.Tests;

/// <summary>The start action's socket handling: bind once, tell a live shim from a stale file.</summary>
public sealed class UnixSocketFilesTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("rcs-usf-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task A_bound_socket_accepts_connections_and_counts_as_serving()
    {
        string path = Path.Combine(_dir, "s");
        using var handle = UnixSocketFiles.TryListen(path);
        Assert.NotNull(handle);
        using var listener = new LoopListener(IoLoop.Shared, handle!);
        var accepted = listener.AcceptAsync(TestIo.Ct).AsTask();

        Assert.True(UnixSocketFiles.IsServing(path));
        using var peer = await accepted.WaitAsync(TestIo.Timeout, TestIo.Ct);
    }

    [Fact]
    public void A_path_in_use_gives_null_and_a_stale_file_is_not_serving()
    {
        string path = Path.Combine(_dir, "s");
        var first = UnixSocketFiles.TryListen(path);
        Assert.NotNull(first);
        Assert.Null(UnixSocketFiles.TryListen(path));

        first!.Dispose();   // the listener is gone, its file stays: a dead shim's socket
        Assert.True(File.Exists(path));
        Assert.False(UnixSocketFiles.IsServing(path));
    }

    [Fact]
    public void A_missing_path_is_not_serving()
    {
        Assert.False(UnixSocketFiles.IsServing(Path.Combine(_dir, "none")));
    }
}
