import java.sql.*;
import java.util.Properties;
import java.util.concurrent.*;
import java.util.concurrent.atomic.AtomicInteger;

/** N JDBC connections at once, each past prepareThreshold (server-side named statements), K runs each. */
public class JdbcPooled {
    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://" + args[0] + ":" + args[1] + "/dmv?sslmode=disable&prepareThreshold=1";
        int clients = Integer.parseInt(args[2]);
        int runs = Integer.parseInt(args[3]);
        Properties props = new Properties();
        props.setProperty("user", "dmv_clerk");
        props.setProperty("password", "dmv_clerk-demo-password");
        Connection[] conns = new Connection[clients];
        for (int i = 0; i < clients; i++) conns[i] = DriverManager.getConnection(url, props);
        AtomicInteger ok = new AtomicInteger();
        CyclicBarrier barrier = new CyclicBarrier(clients);
        ExecutorService pool = Executors.newFixedThreadPool(clients);
        Future<?>[] done = new Future<?>[clients];
        for (int i = 0; i < clients; i++) {
            final Connection c = conns[i];
            final int n = i;
            done[i] = pool.submit(() -> {
                barrier.await(60, TimeUnit.SECONDS);
                try (PreparedStatement ps = c.prepareStatement("SELECT zip FROM dmv.persons WHERE person_id = ?")) {
                    for (int r = 0; r < runs; r++) {
                        ps.setLong(1, (n * 7 + r) % 50 + 1);
                        try (ResultSet rs = ps.executeQuery()) {
                            if (rs.next()) ok.incrementAndGet();
                        }
                    }
                }
                return null;
            });
        }
        for (Future<?> f : done) f.get(180, TimeUnit.SECONDS);
        pool.shutdown();
        System.out.println("ok=" + ok.get() + " open=" + clients);
        System.out.flush();
        if (args.length > 4) Thread.sleep(Long.parseLong(args[4]));  // connections stay open meanwhile
        for (Connection c : conns) c.close();
    }
}
