using System.Net.Sockets;
using Shim.Os.Interop;
using Shim.Os.Tests.Support;
using Shim.Os.Terminals;

namespace Shim.Os.Tests;

public sealed class ConsoleSocketTests
{
    [Fact]
    public void A_console_socket_listens_in_a_private_pty_directory_that_dispose_removes()
    {
        string directory;
        using (var socket = ConsoleSocket.Create())
        {
            Assert.Equal("pty.sock", Path.GetFileName(socket.Path));
            directory = Path.GetDirectoryName(socket.Path)!;
            Assert.StartsWith("pty", Path.GetFileName(directory), StringComparison.Ordinal);
            string? runtimeDir = Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR");
            string parent = string.IsNullOrEmpty(runtimeDir) ? Path.GetTempPath() : runtimeDir;
            Assert.Equal(Path.TrimEndingDirectorySeparator(Path.GetFullPath(parent)), Path.GetDirectoryName(directory));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute,
                File.GetUnixFileMode(directory));
            Assert.True(File.Exists(socket.Path));
        }
        Assert.False(Directory.Exists(directory));
    }

    [Fact]
    public void Each_console_socket_gets_its_own_directory()
    {
        using var a = ConsoleSocket.Create();
        using var b = ConsoleSocket.Create();
        Assert.NotEqual(Path.GetDirectoryName(a.Path), Path.GetDirectoryName(b.Path));
    }

    [Fact]
    public void The_socket_goes_under_xdg_runtime_dir_when_it_is_set()
    {
        using var runtimeDir = TestIo.CreateTempDir();
        string? saved = Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR");
        Environment.SetEnvironmentVariable("XDG_RUNTIME_DIR", runtimeDir.Path);
        try
        {
            using var socket = ConsoleSocket.Create();
            Assert.Equal(runtimeDir.Path, Path.GetDirectoryName(Path.GetDirectoryName(socket.Path)));
        }
        finally
        {
            Environment.SetEnvironmentVariable("XDG_RUNTIME_DIR", saved);
        }
        Assert.Empty(Directory.GetFileSystemEntries(runtimeDir.Path));
    }

    [Fact]
    public async Task A_console_socket_receives_a_pty_master_sent_with_scm_rights()
    {
        using var socket = ConsoleSocket.Create();
        var (master, slave, name) = Terminal.OpenPty();
        using (slave)
        {
            var receiving = socket.ReceiveMasterAsync(TestIo.Ct);
            using (master)
            {
                // runc's side: connect, send the master, close its own copy.
                await Task.Run(() => ConsoleSocket.SendMaster(socket.Path, master), TestIo.Ct);
            }
            using var received = await receiving.WaitAsync(TestIo.Timeout, TestIo.Ct);

            Assert.True(master.IsClosed);   // the received descriptor is all that is left of the master
            Assert.Equal(name, Terminal.TryGetSlaveName(received));
            Assert.Equal(Libc.FD_CLOEXEC, Libc.fcntl((int)received.DangerousGetHandle(), Libc.F_GETFD, 0) & Libc.FD_CLOEXEC);

            // It is the same pty: the size set through the received master shows on the slave.
            Terminal.Resize(received, 120, 40);
            Assert.Equal(((ushort)120, (ushort)40), Terminal.GetSize(slave));
        }
    }

    [Fact]
    public async Task Receiving_waits_for_a_sender_that_connects_before_it_sends()
    {
        using var socket = ConsoleSocket.Create();
        var (master, slave, name) = Terminal.OpenPty();
        using (master)
        using (slave)
        using (var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            await client.ConnectAsync(new UnixDomainSocketEndPoint(socket.Path), TestIo.Ct);
            var receiving = socket.ReceiveMasterAsync(TestIo.Ct);
            await Task.Yield();
            Assert.False(receiving.IsCompleted);

            ScmRights.Send(client.SafeHandle, name, master);
            using var received = await receiving.WaitAsync(TestIo.Timeout, TestIo.Ct);
            Assert.Equal(name, Terminal.TryGetSlaveName(received));
        }
    }

    [Fact]
    public async Task Receiving_with_nobody_connecting_honours_cancellation()
    {
        using var socket = ConsoleSocket.Create();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestIo.Ct);
        var receiving = socket.ReceiveMasterAsync(cts.Token);
        cts.CancelAfter(TimeSpan.FromMilliseconds(50));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => receiving.WaitAsync(TestIo.Timeout, TestIo.Ct));
    }

    [Fact]
    public async Task Receiving_from_a_sender_that_stays_silent_honours_cancellation()
    {
        using var socket = ConsoleSocket.Create();
        using var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await client.ConnectAsync(new UnixDomainSocketEndPoint(socket.Path), TestIo.Ct);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestIo.Ct);
        var receiving = socket.ReceiveMasterAsync(cts.Token);
        cts.CancelAfter(TimeSpan.FromMilliseconds(50));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => receiving.WaitAsync(TestIo.Timeout, TestIo.Ct));
    }

    [Fact]
    public async Task Disposing_the_socket_fails_a_pending_receive_instead_of_leaving_it_hanging()
    {
        var socket = ConsoleSocket.Create();
        var receiving = socket.ReceiveMasterAsync(TestIo.Ct);
        socket.Dispose();
        await Assert.ThrowsAnyAsync<Exception>(() => receiving.WaitAsync(TestIo.Timeout, TestIo.Ct));
        Assert.False(Directory.Exists(Path.GetDirectoryName(socket.Path)));
    }

    [Fact]
    public async Task A_message_without_a_file_descriptor_is_rejected()
    {
        using var socket = ConsoleSocket.Create();
        var receiving = socket.ReceiveMasterAsync(TestIo.Ct);
        using (var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            await client.ConnectAsync(new UnixDomainSocketEndPoint(socket.Path), TestIo.Ct);
            await client.SendAsync("/dev/pts/0"u8.ToArray(), SocketFlags.None, TestIo.Ct);
        }
        var ex = await Assert.ThrowsAsync<IOException>(() => receiving.WaitAsync(TestIo.Timeout, TestIo.Ct));
        Assert.Contains("no file descriptor", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_sender_that_hangs_up_without_sending_is_rejected()
    {
        using var socket = ConsoleSocket.Create();
        var receiving = socket.ReceiveMasterAsync(TestIo.Ct);
        using (var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            await client.ConnectAsync(new UnixDomainSocketEndPoint(socket.Path), TestIo.Ct);
        }
        var ex = await Assert.ThrowsAsync<IOException>(() => receiving.WaitAsync(TestIo.Timeout, TestIo.Ct));
        Assert.Contains("hung up", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Extra_descriptors_in_the_message_are_closed_and_the_first_is_kept()
    {
        // Not something runc does; the receiver must still not leak what it did not ask for.
        using var socket = ConsoleSocket.Create();
        var (master, slave, name) = Terminal.OpenPty();
        var (pipeRead, pipeWrite) = Pipes.Create();
        using (master)
        using (slave)
        using (pipeRead)
        using (var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            await client.ConnectAsync(new UnixDomainSocketEndPoint(socket.Path), TestIo.Ct);
            var receiving = socket.ReceiveMasterAsync(TestIo.Ct);
            ScmRights.Send(client.SafeHandle, "x", master, pipeWrite);
            pipeWrite.Dispose();
            using var received = await receiving.WaitAsync(TestIo.Timeout, TestIo.Ct);
            Assert.Equal(name, Terminal.TryGetSlaveName(received));
            // The pipe's only other write end was the extra descriptor: closed, so the reader sees EOF.
            Assert.Equal(0, TestIo.Read(pipeRead, new byte[1]));
        }
    }
}
