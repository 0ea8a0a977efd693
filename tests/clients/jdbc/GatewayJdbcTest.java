import java.sql.*;
import java.util.Properties;

/** JDBC through the gateway: prepared statements, redaction warning, denial with SQLSTATE 42501. */
public class GatewayJdbcTest {
    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://" + args[0] + ":" + args[1] + "/dmv?sslmode=disable";
        Properties props = new Properties();
        props.setProperty("user", "dmv_clerk");
        props.setProperty("password", "dmv_clerk-demo-password");
        props.setProperty("options", "-c gateway.purpose=service_delivery");
        try (Connection c = DriverManager.getConnection(url, props)) {
            String status = "?";
            String warning = "";
            for (int i = 0; i < 7; i++) {  // past prepareThreshold (5): server-side named statements
                try (PreparedStatement ps = c.prepareStatement(
                        "SELECT person_id, immigration_status FROM dmv.lawful_presence WHERE person_id = ?")) {
                    ps.setLong(1, 3 + i);
                    try (ResultSet rs = ps.executeQuery()) {
                        rs.next();
                        status = String.valueOf(rs.getString(2));
                        SQLWarning w = ps.getWarnings();
                        if (w != null) warning = w.getMessage();
                    }
                }
            }
            String denied = "";
            try (PreparedStatement ps = c.prepareStatement(
                    "SELECT count(*) FROM dmv.lawful_presence WHERE immigration_status = ?")) {
                ps.setString(1, "TPS");
                ps.executeQuery();
            } catch (SQLException e) {
                denied = e.getSQLState();
            }
            int five;
            try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("SELECT 5")) {
                rs.next();
                five = rs.getInt(1);
            }
            System.out.println("status=" + status + " denied=" + denied + " five=" + five + " warning=" + warning);
        }
    }
}
