using System.Buffers.Binary;
using Containerd.Task.V2;
using Google.Protobuf;
using Shim.Ttrpc.Wire;

namespace Shim.E2E.Tests;

/// <summary>The shim's socket admits only its own user: file mode, directory, and the SO_PEERCRED check itself.</summary>
public sealed class PeerCheckTests : E2ETest
{
    private const int Nobody = 65534;

    /// <summary>
    /// Connects to argv[1], sends the frame in argv[2] (hex), reads one answer frame; prints
    /// ANSWER/CLOSED/TIMEOUT/CONNECT-ERROR and what arrived. Runs as any user (no /root paths).
    /// </summary>
    private const string Probe = """
        import socket, sys
        path, frame = sys.argv[1], bytes.fromhex(sys.argv[2])
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
        except OSError as e:
            print("CONNECT-ERROR", e.errno); sys.exit(0)
        s.settimeout(10)
        try:
            s.sendall(frame)
        except OSError as e:
            print("SEND-ERROR", e.errno)
        data = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
                if len(data) >= 10 and len(data) >= 10 + int.from_bytes(data[:4], "big"):
                    break
        except socket.timeout:
            print("TIMEOUT", data.hex()); sys.exit(0)
        except ConnectionResetError:
            pass
        print("ANSWER" if data else "CLOSED", data.hex())
        """;

    [Fact]
    public async Task Socket_is_0600_in_a_private_dir_and_a_connection_from_nobody_is_closed_unanswered()
    {
        OursOnly("the peer credential check is ours");
        const string id = "peer1";
        (await CtrAsync(RunArgs(id, detach: true, "sleep", "300"))).EnsureSuccess();
        await using (var root = await ShimClient.ConnectAsync(Ctrd, Ns, id, Ct))
        {
            string socket = root.SocketPath;
            string dir = Path.GetDirectoryName(socket)!;
            Log($"shim socket {socket}: {Octal(Mode(socket))}, dir {dir}: {Octal(Mode(dir))}");
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, Mode(socket));
            Assert.False((Mode(dir) & (UnixFileMode.OtherWrite | UnixFileMode.GroupWrite)) != 0, $"{dir} is {Mode(dir)}: writable by others");

            // nobody cannot even reach the socket through its 0700 dir: give it a second name in a
            // dir it can traverse (a hard link is the same socket), and open the socket itself up
            string linkDir = Path.Combine("/run", "rcs-peer-" + Guid.NewGuid().ToString("N")[..8]);
            Directory.CreateDirectory(linkDir, (UnixFileMode)Convert.ToInt32("755", 8));
            string link = Path.Combine(linkDir, "s");
            try
            {
                (await Command.RunAsync("ln", [socket, link], ct: Ct)).EnsureSuccess();
                File.SetUnixFileMode(socket, (UnixFileMode)Convert.ToInt32("666", 8));

                byte[] frame = StateFrame(id);
                var asRoot = await ProbeAsync(link, frame, asNobody: false);
                Assert.True(asRoot.StartsWith("ANSWER ", StringComparison.Ordinal), $"as root through the link: {asRoot}");
                Assert.Equal(Containerd.Types.Task.Status.Running, ParseState(asRoot).Status);

                var asNobody = await ProbeAsync(link, frame, asNobody: true);
                Log($"as nobody: {asNobody}");
                Assert.True(asNobody.StartsWith("CLOSED", StringComparison.Ordinal), $"a connection from uid {Nobody} was not just closed: {asNobody}");

                // and it was the peer check that closed it (the shim logs the refusal into containerd's log)
                var until = DateTime.UtcNow + TimeSpan.FromSeconds(10);
                while (!Ctrd.ReadLog().Contains("refused connection from another user", StringComparison.Ordinal))
                {
                    Assert.True(DateTime.UtcNow < until, "the shim did not log the refused connection");
                    await Task.Delay(50, Ct);
                }
            }
            finally
            {
                File.SetUnixFileMode(socket, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                Directory.Delete(linkDir, recursive: true);
            }

            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, Mode(socket));
            var state = await root.CallAsync("State", new StateRequest { Id = id }, StateResponse.Parser, Ct);
            Assert.Equal(Containerd.Types.Task.Status.Running, state.Status);
        }

        // a fresh connection as root still works too
        await using var again = await ShimClient.ConnectAsync(Ctrd, Ns, id, Ct);
        Assert.Equal(Containerd.Types.Task.Status.Running,
            (await again.CallAsync("State", new StateRequest { Id = id }, StateResponse.Parser, Ct)).Status);
    }

    private static string Octal(UnixFileMode mode) => "0" + Convert.ToString((int)mode, 8);

    private static UnixFileMode Mode(string path) => File.GetUnixFileMode(path) & (UnixFileMode)Convert.ToInt32("7777", 8);

    /// <summary>A task v2 State request frame on stream 1, as containerd would send it.</summary>
    private static byte[] StateFrame(string id)
    {
        var envelope = new Request { Service = ShimClient.TaskV2, Method = "State", Payload = new StateRequest { Id = id }.ToByteString() }.ToByteArray();
        var frame = new byte[10 + envelope.Length];
        BinaryPrimitives.WriteUInt32BigEndian(frame, (uint)envelope.Length);
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(4), 1);
        frame[8] = 1;   // request
        envelope.CopyTo(frame, 10);
        return frame;
    }

    private static StateResponse ParseState(string probeOutput)
    {
        var bytes = Convert.FromHexString(probeOutput.Split(' ')[1].Trim());
        var response = Response.Parser.ParseFrom(bytes.AsSpan(10));
        Assert.True((response.Status?.Code ?? 0) == 0, $"State failed: {response.Status}");
        return StateResponse.Parser.ParseFrom(response.Payload);
    }

    private static async Task<string> ProbeAsync(string socket, byte[] frame, bool asNobody)
    {
        string[] python = ["/usr/bin/python3", "-c", Probe, socket, Convert.ToHexString(frame)];
        var result = asNobody
            ? await Command.RunAsync("setpriv", [$"--reuid={Nobody}", $"--regid={Nobody}", "--clear-groups", .. python],
                timeout: TimeSpan.FromSeconds(30), env: new Dictionary<string, string> { ["HOME"] = "/" }, ct: Ct)
            : await Command.RunAsync(python[0], python[1..], timeout: TimeSpan.FromSeconds(30), ct: Ct);
        Assert.True(result.ExitCode == 0, result.Describe());
        return result.Stdout.Trim().Split('\n')[^1];
    }
}
