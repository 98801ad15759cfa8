using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;
using Shim.Os.Tests.Support;
using Shim.Os.Io;
using Shim.Os.Terminals;

namespace Shim.Os.Tests;

/// <summary>The terminal copy the shim sets up: master → stdout and stdin → master on the shared loop.</summary>
[Collection(ProcessCollection.Name)]
public sealed class PtyPumpTests
{
    private const int Mib = 1024 * 1024;

    [Fact]
    public async Task A_shell_on_the_pty_slave_sees_the_size_set_on_the_master_and_its_output_arrives()
    {
        var (master, slave, name) = Terminal.OpenPty();
        var (outRead, outWrite) = Pipes.Create();
        using (master)
        using (outRead)
        {
            Terminal.Resize(master, 100, 30);
            var pump = IoLoop.Shared.Pump(master, outWrite, closeDestinationAtEof: true);
            ChildProcess child;
            using (slave)
            {
                child = Reaper.Instance.Spawn(new SpawnOptions
                {
                    Path = "/bin/sh",
                    Args = ["sh", "-c", "stty size; tty; echo done"],
                    Fds = new Dictionary<int, SafeHandle> { [0] = slave, [1] = slave, [2] = slave },
                    NewSession = true,
                });
            }

            // The pump ends (EIO on the master) only once the child and our slave copy are closed.
            string output = await TestIo.ReadAllTextAsync(outRead);
            Assert.Equal(0, (await child.Exited.WaitAsync(TestIo.Timeout, TestIo.Ct)).Status);
            Assert.Equal($"30 100\r\n{name}\r\ndone\r\n", output);   // the tty turns \n into \r\n
            var result = await pump.WaitAsync(TestIo.Timeout, TestIo.Ct);
            Assert.Equal(new PumpResult(output.Length, 0, 0), result);
            Assert.False(master.IsClosed);
        }
    }

    [Fact]
    public async Task A_pty_master_source_ends_cleanly_at_eio_without_losing_bytes_written_before_the_slave_closed()
    {
        var (master, slave, _) = Terminal.OpenPty();
        var (outRead, outWrite) = Pipes.Create();
        using (master)
        using (outRead)
        {
            var pump = IoLoop.Shared.Pump(master, outWrite, closeDestinationAtEof: true);
            // Letters only, so output processing (\n → \r\n) leaves the bytes alone.
            byte[] data = RandomLetters(2 * Mib + 11);
            var writer = Task.Run(() =>
            {
                using (slave)
                {
                    Assert.Equal(data.Length, TestIo.Write(slave, data));
                }   // closing the last slave fd right after the write is the race that could lose data
            }, TestIo.Ct);
            byte[] received = await Task.Run(() => ReadToEnd(outRead), TestIo.Ct).WaitAsync(TestIo.Timeout, TestIo.Ct);
            await writer.WaitAsync(TestIo.Timeout, TestIo.Ct);

            Assert.Equal(data.Length, received.Length);
            Assert.Equal(SHA256.HashData(data), SHA256.HashData(received));
            Assert.Equal(new PumpResult(data.Length, 0, 0), await pump.WaitAsync(TestIo.Timeout, TestIo.Ct));
        }
    }

    [Fact]
    public async Task A_pty_master_destination_takes_megabytes_with_backpressure_and_stays_open_at_stdin_eof()
    {
        var (master, slave, name) = Terminal.OpenPty();
        var (inRead, inWrite) = Pipes.Create();
        using (master)
        using (slave)
        using (inRead)
        {
            // Raw, no echo: the slave reads exactly the bytes written to the master.
            var (sttyOutput, sttyExit) = await Children.RunAsync($"stty -F {name} raw -echo -iexten");
            Assert.True(sttyExit.Status == 0, sttyOutput);

            var pump = IoLoop.Shared.Pump(inRead, master, closeDestinationAtEof: false);
            byte[] data = RandomNumberGenerator.GetBytes(4 * Mib);
            var writer = Task.Run(() =>
            {
                using (inWrite)
                {
                    Assert.Equal(data.Length, TestIo.Write(inWrite, data));
                }
            }, TestIo.Ct);
            byte[] received = await Task.Run(() => ReadExactly(slave, data.Length), TestIo.Ct).WaitAsync(TestIo.Timeout, TestIo.Ct);
            await writer.WaitAsync(TestIo.Timeout, TestIo.Ct);

            Assert.Equal(SHA256.HashData(data), SHA256.HashData(received));
            Assert.Equal(new PumpResult(data.Length, 0, 0), await pump.WaitAsync(TestIo.Timeout, TestIo.Ct));
            Assert.False(master.IsClosed);   // stdin EOF must not close the terminal
        }
    }

    [Fact]
    public async Task Stdin_and_stdout_pumps_share_one_epoll_registration_of_the_master()
    {
        using var loop = new IoLoop("pty-test-loop");
        var (master, slave, _) = Terminal.OpenPty();
        var (inRead, inWrite) = Pipes.Create();
        var (outRead, outWrite) = Pipes.Create();
        using (master)
        using (inRead)
        using (outRead)
        {
            ChildProcess child;
            using (slave)
            {
                child = Reaper.Instance.Spawn(new SpawnOptions
                {
                    Path = "/bin/sh",
                    Args = ["sh", "-c", "stty -echo; read line; echo \"got $line\""],
                    Fds = new Dictionary<int, SafeHandle> { [0] = slave, [1] = slave, [2] = slave },
                    NewSession = true,
                });
            }
            var stdout = loop.Pump(master, outWrite, closeDestinationAtEof: true);
            var stdin = loop.Pump(inRead, master, closeDestinationAtEof: false);
            // Commands run in order on the loop thread: once this one has run, both pumps are registered.
            var registered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            loop.Post(registered.SetResult);
            await registered.Task.WaitAsync(TestIo.Timeout, TestIo.Ct);
            Assert.Equal(1, EpollRegistrations((int)master.DangerousGetHandle()));

            using (inWrite)
            {
                Assert.Equal(6, TestIo.Write(inWrite, "hello\n"u8));
            }
            // stdin EOF ends only the stdin pump; the master stays open and the stdout pump keeps going.
            Assert.Equal(new PumpResult(6, 0, 0), await stdin.WaitAsync(TestIo.Timeout, TestIo.Ct));
            Assert.False(master.IsClosed);

            string output = await TestIo.ReadAllTextAsync(outRead);
            Assert.Equal(0, (await child.Exited.WaitAsync(TestIo.Timeout, TestIo.Ct)).Status);
            Assert.EndsWith("got hello\r\n", output, StringComparison.Ordinal);
            Assert.Equal(0, (await stdout.WaitAsync(TestIo.Timeout, TestIo.Ct)).Errno);
            Assert.Equal(0, EpollRegistrations((int)master.DangerousGetHandle()));
        }
    }

    /// <summary>How many epoll instances of this process watch <paramref name="fd"/> ("tfd:" lines in /proc/self/fdinfo).</summary>
    private static int EpollRegistrations(int fd)
    {
        int count = 0;
        foreach (string link in Directory.GetFiles("/proc/self/fd"))
        {
            string? target;
            try
            {
                target = new FileInfo(link).LinkTarget;
            }
            catch (IOException)
            {
                continue;   // closed meanwhile
            }
            if (target != "anon_inode:[eventpoll]")
            {
                continue;
            }
            string info;
            try
            {
                info = File.ReadAllText("/proc/self/fdinfo/" + Path.GetFileName(link));
            }
            catch (IOException)
            {
                continue;
            }
            foreach (string line in info.Split('\n'))
            {
                // "tfd:       12 events:       19 data: ..."
                string[] fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (fields.Length >= 2 && fields[0] == "tfd:" && fields[1] == fd.ToString(System.Globalization.CultureInfo.InvariantCulture))
                {
                    count++;
                }
            }
        }
        return count;
    }

    private static byte[] RandomLetters(int length)
    {
        byte[] data = RandomNumberGenerator.GetBytes(length);
        for (int i = 0; i < data.Length; i++)
        {
            data[i] = (byte)('a' + (data[i] % 26));
        }
        return data;
    }

    private static byte[] ReadToEnd(SafeFileHandle handle)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[64 * 1024];
        int n;
        while ((n = TestIo.Read(handle, chunk)) > 0)
        {
            buffer.Write(chunk, 0, n);
        }
        if (n < 0)
        {
            throw new IOException($"read failed: errno {-n}");
        }
        return buffer.ToArray();
    }

    private static byte[] ReadExactly(SafeFileHandle handle, int length)
    {
        var data = new byte[length];
        int done = 0;
        while (done < length)
        {
            int n = TestIo.Read(handle, data.AsSpan(done));
            if (n <= 0)
            {
                throw new IOException($"read failed after {done} bytes: {(n == 0 ? "EOF" : $"errno {-n}")}");
            }
            done += n;
        }
        return data;
    }
}
