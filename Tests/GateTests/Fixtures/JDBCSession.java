// A JDBC client session (PostgreSQL's pgJDBC, Debian's libpostgresql-jdbc-java): server-side
// prepared statements from the first execution, metadata reads, a transaction, then close().
// Prints what it read, one line each, so a run through the gate can be compared with one direct.
import java.sql.*;
import java.util.Properties;

public class JDBCSession {
    public static void main(String[] args) throws Exception {
        Properties p = new Properties();
        p.setProperty("user", System.getenv("PGUSER"));
        p.setProperty("password", System.getenv("PGPASSWORD"));
        p.setProperty("sslmode", "disable");
        p.setProperty("prepareThreshold", "1");
        String url = "jdbc:postgresql://127.0.0.1:" + System.getenv("PGPORT") + "/" + System.getenv("PGDATABASE");
        Connection c = DriverManager.getConnection(url, p);
        try (PreparedStatement s = c.prepareStatement("SELECT 41 + ?")) {
            for (int i = 1; i <= 3; i++) {
                s.setInt(1, i);
                try (ResultSet r = s.executeQuery()) { r.next(); System.out.println("sum " + r.getInt(1)); }
            }
        }
        DatabaseMetaData meta = c.getMetaData();
        int tables = 0;
        try (ResultSet r = meta.getTables(null, "analytics", "%", new String[] {"TABLE"})) { while (r.next()) tables++; }
        System.out.println("analytics tables " + tables);
        c.setAutoCommit(false);
        try (Statement s = c.createStatement(); ResultSet r = s.executeQuery("SELECT count(*) FROM analytics.daily_revenue")) {
            r.next();
            System.out.println("rows " + r.getLong(1));
        }
        c.commit();
        try (Statement s = c.createStatement()) {
            s.executeQuery("SELECT 1/0");
        } catch (SQLException e) {
            System.out.println("error " + e.getSQLState());
            c.rollback();
        }
        c.close();
        System.out.println("closed " + c.isClosed());
    }
}
