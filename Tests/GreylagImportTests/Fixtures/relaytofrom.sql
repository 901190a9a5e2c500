/*M!999999\- enable the sandbox mode */ 
-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)
--
-- Host: mx1.example.net    Database: relaydelay
-- ------------------------------------------------------
-- Server version	10.11.19-MariaDB-0+deb12u1
-- relaydelay state of mx1; the scanner's "relaytofrom" table, taken before the switch

/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;
/*!40101 SET @OLD_CHARACTER_SET_RESULTS=@@CHARACTER_SET_RESULTS */;
/*!40101 SET @OLD_COLLATION_CONNECTION=@@COLLATION_CONNECTION */;
/*!40101 SET NAMES utf8mb4 */;
/*!40103 SET @OLD_TIME_ZONE=@@TIME_ZONE */;
/*!40103 SET TIME_ZONE='+00:00' */;
/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;
/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;
/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;
/*!40111 SET @OLD_SQL_NOTES=@@SQL_NOTES, SQL_NOTES=0 */;

--
-- Table structure for table `dns_name`
--

DROP TABLE IF EXISTS `dns_name`;
/*!40101 SET @saved_cs_client     = @@character_set_client */;
/*!40101 SET character_set_client = utf8mb4 */;
CREATE TABLE `dns_name` (
  `relay_ip` varchar(18) NOT NULL,
  `relay_name` varchar(255) NOT NULL,
  `last_update` timestamp NOT NULL,
  PRIMARY KEY (`relay_ip`)
) ENGINE=InnoDB DEFAULT CHARSET=latin1 COLLATE=latin1_swedish_ci;
/*!40101 SET character_set_client = @saved_cs_client */;

--
-- Dumping data for table `dns_name`
--

LOCK TABLES `dns_name` WRITE;
/*!40000 ALTER TABLE `dns_name` DISABLE KEYS */;
INSERT INTO `dns_name` VALUES
('192.0.2.10','gro.elpmaxe.xm','2006-11-14 16:14:30');
/*!40000 ALTER TABLE `dns_name` ENABLE KEYS */;
UNLOCK TABLES;

--
-- Table structure for table `relaytofrom`
--

DROP TABLE IF EXISTS `relaytofrom`;
/*!40101 SET @saved_cs_client     = @@character_set_client */;
/*!40101 SET character_set_client = utf8mb4 */;
CREATE TABLE `relaytofrom` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT,
  `relay_ip` varchar(39) DEFAULT NULL,
  `mail_from` varchar(255) DEFAULT NULL,
  `rcpt_to` varchar(255) DEFAULT NULL,
  `block_expires` datetime NOT NULL,
  `record_expires` datetime NOT NULL,
  `blocked_count` bigint(20) NOT NULL DEFAULT 0,
  `passed_count` bigint(20) NOT NULL DEFAULT 0,
  `aborted_count` bigint(20) NOT NULL DEFAULT 0,
  `origin_type` enum('MANUAL','AUTO') NOT NULL,
  `create_time` datetime NOT NULL,
  `last_update` timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp(),
  PRIMARY KEY (`id`),
  KEY `relay_ip` (`relay_ip`),
  KEY `mail_from` (`mail_from`(20)),
  KEY `rcpt_to` (`rcpt_to`(20))
) ENGINE=InnoDB AUTO_INCREMENT=16 DEFAULT CHARSET=latin1 COLLATE=latin1_swedish_ci;
/*!40101 SET character_set_client = @saved_cs_client */;

--
-- Dumping data for table `relaytofrom`
--

LOCK TABLES `relaytofrom` WRITE;
/*!40000 ALTER TABLE `relaytofrom` DISABLE KEYS */;
INSERT INTO `relaytofrom` VALUES
(1,'127.0.0.1',NULL,NULL,'0000-00-00 00:00:00','9999-12-31 23:59:59',0,0,0,'MANUAL','2006-10-02 08:00:00','2006-10-02 08:00:00'),
(2,'192.168',NULL,NULL,'0000-00-00 00:00:00','9999-12-31 23:59:59',0,0,0,'MANUAL','2006-10-02 08:00:00','2006-10-02 08:00:00'),
(3,'192.0.2.10','<Alice@Example.ORG>','<bob@example.net>','2006-11-14 17:14:27','2006-12-20 17:30:00',2,5,0,'AUTO','2006-11-14 16:14:27','2006-11-15 09:30:00'),
(4,'192.0.2.77','<newsletter+bounce-4711@lists.example.com>','<carol@example.net>','2006-11-15 11:20:00','2006-11-15 15:20:00',1,0,0,'AUTO','2006-11-15 10:20:00','2006-11-15 10:20:00'),
(5,'192.0.2.99','<alice@example.org>','<Bob@Example.NET>','2006-11-13 09:00:00','2006-12-24 08:00:00',1,3,1,'AUTO','2006-11-13 08:00:00','2006-11-14 08:00:00'),
(6,'2001:db8:aaaa:1::25','<>','<postmaster@example.net>','2006-11-15 08:05:00','2006-11-15 12:05:00',3,0,0,'AUTO','2006-11-15 07:05:00','2006-11-15 07:45:00'),
(7,NULL,'<bob@example.net>','<alice@example.org>','2006-11-14 16:14:27','2006-11-18 16:14:27',0,0,0,'AUTO','2006-11-14 16:14:27','2006-11-14 16:14:27'),
(8,'198.51.100',NULL,NULL,'9999-12-31 23:59:59','9999-12-31 23:59:59',0,0,0,'MANUAL','2006-10-05 12:00:00','2006-10-05 12:00:00'),
(9,NULL,NULL,'postmaster@example.net','0000-00-00 00:00:00','9999-12-31 23:59:59',0,0,0,'MANUAL','2006-10-05 12:01:00','2006-10-05 12:01:00'),
(10,NULL,'Spammer@Bad.Example',NULL,'9999-12-31 23:59:59','2007-01-31 00:00:00',0,0,0,'MANUAL','2006-11-01 10:00:00','2006-11-01 10:00:00'),
(11,'203.0.113.5',NULL,'abuse@example.net','0000-00-00 00:00:00','9999-12-31 23:59:59',0,0,0,'MANUAL','2006-11-01 10:05:00','2006-11-01 10:05:00'),
(12,'203.0.113.200','<old@example.com>','<dave@example.net>','2006-10-30 10:00:00','2006-11-01 10:00:00',1,0,0,'AUTO','2006-10-30 09:00:00','2006-10-30 09:00:00'),
(13,'203.0.113.9','<o\'brien;sales@example.ie>','<erin@example.net>','2006-11-14 20:00:00','2006-12-19 21:00:00',1,1,0,'AUTO','2006-11-14 19:00:00','2006-11-14 21:00:00'),
(14,'not-an-ip','<x@example.com>','<y@example.net>','2006-11-14 20:00:00','2006-12-19 21:00:00',1,0,0,'AUTO','2006-11-14 19:00:00','2006-11-14 19:00:00'),
(15,'203.0.113.10','<back\\slash@example.com>','<frank@example.net>','2006-11-15 10:00:00','2006-11-17 09:00:00',1,0,0,'AUTO','2006-11-15 09:00:00','2006-11-15 09:00:00');
/*!40000 ALTER TABLE `relaytofrom` ENABLE KEYS */;
UNLOCK TABLES;
/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;

/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;
/*!40014 SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS */;
/*!40014 SET UNIQUE_CHECKS=@OLD_UNIQUE_CHECKS */;
/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;
/*!40101 SET CHARACTER_SET_RESULTS=@OLD_CHARACTER_SET_RESULTS */;
/*!40101 SET COLLATION_CONNECTION=@OLD_COLLATION_CONNECTION */;
/*!40111 SET SQL_NOTES=@OLD_SQL_NOTES */;

-- Dump completed on 2006-11-15 12:00:01
