using Shim.Os.Tests.Support;

namespace Shim.Os.Tests;

public sealed class FifoTests
{
    private const int EAGAIN = 11;

    [Fact]
    public void Output_opens_without_a_reader_and_buffers_what_is_written()
    {
        using var dir = TestIo.CreateTempDir();
        string fifo = dir.Combine("stdout");
        Fifos.Create(fifo);
        using var output = Fifos.OpenOutput(fifo);
        Assert.Equal(5, TestIo.Write(output, "hello"u8));

        using var reader = Fds.Open(fifo, Fds.O_RDONLY | Fds.O_NONBLOCK);
        var buffer = new byte[16];
        Assert.Equal(5, TestIo.Read(reader, buffer));
        Assert.Equal("hello"u8.ToArray(), buffer[..5]);
    }

    [Fact]
    public void Output_writes_do_not_fail_after_the_reader_detaches()
    {
        using var dir = TestIo.CreateTempDir();
        string fifo = dir.Combine("stdout");
        Fifos.Create(fifo);
        using var output = Fifos.OpenOutput(fifo);
        Fds.Open(fifo, Fds.O_RDONLY | Fds.O_NONBLOCK).Dispose();
        Assert.Equal(3, TestIo.Write(output, "abc"u8));
    }

    [Fact]
    public void Input_sees_client_data_but_eof_only_after_the_keeper_closes()
    {
        using var dir = TestIo.CreateTempDir();
        string fifo = dir.Combine("stdin");
        Fifos.Create(fifo);
        var (reader, keeper) = Fifos.OpenInput(fifo);
        using (reader)
        {
            using (var client = Fds.Open(fifo, Fds.O_WRONLY))
            {
                Assert.Equal(4, TestIo.Write(client, "data"u8));
            }
            var buffer = new byte[16];
            Assert.Equal(4, TestIo.Read(reader, buffer));
            Assert.Equal(-EAGAIN, TestIo.Read(reader, buffer));   // client gone, but no EOF yet

            keeper.Dispose();
            Assert.Equal(0, TestIo.Read(reader, buffer));
        }
    }

    [Fact]
    public void Creating_an_existing_fifo_is_not_an_error_and_it_is_recognised_as_a_fifo()
    {
        using var dir = TestIo.CreateTempDir();
        string fifo = dir.Combine("f");
        Fifos.Create(fifo);
        Fifos.Create(fifo);
        Assert.True(Fds.IsFifo(fifo));
        Assert.False(Fds.IsFifo(dir.Path));
        Assert.False(Fds.IsFifo(dir.Combine("missing")));
        using var handle = Fifos.OpenOutput(fifo);
        Assert.True(Fds.IsFifo(handle));
    }
}
