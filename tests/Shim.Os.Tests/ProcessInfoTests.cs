using System.Net.Sockets;
using Shim.Os.Tests.Support;

namespace Shim.Os.Tests;

public sealed class ProcessInfoTests
{
    [Fact]
    public void Pid_and_effective_ids_match_the_runtime()
    {
        Assert.Equal(Environment.ProcessId, ProcessInfo.Pid);
        Assert.True(ProcessInfo.EffectiveUid >= 0);
        Assert.True(ProcessInfo.EffectiveGid >= 0);
    }

    [Fact]
    public async Task Peer_credentials_of_a_unix_socket_name_this_process()
    {
        using var dir = TestIo.CreateTempDir();
        var endpoint = new UnixDomainSocketEndPoint(dir.Combine("sock"));
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(endpoint);
        listener.Listen(1);
        using var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await client.ConnectAsync(endpoint, TestIo.Ct);
        using var server = await listener.AcceptAsync(TestIo.Ct);

        var (pid, uid, gid) = ProcessInfo.PeerCredentials(server);
        Assert.Equal(Environment.ProcessId, pid);
        Assert.Equal(ProcessInfo.EffectiveUid, uid);
        Assert.Equal(ProcessInfo.EffectiveGid, gid);
    }

    [Fact]
    public void The_own_oom_score_adj_can_be_written_and_read_back()
    {
        int original = ProcessInfo.ReadOomScoreAdj(ProcessInfo.Pid);
        try
        {
            ProcessInfo.WriteOwnOomScoreAdj(original == 100 ? 101 : 100);
            Assert.Equal(original == 100 ? 101 : 100, ProcessInfo.ReadOomScoreAdj(ProcessInfo.Pid));
        }
        finally
        {
            ProcessInfo.WriteOwnOomScoreAdj(original);
        }
    }
}
